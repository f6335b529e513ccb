"""Every setting of the server, loaded once from `CE_*` environment variables.

`Settings()` is built in `main()` and passed down; nothing else reads the
environment. Nested groups use `__` in variable names, e.g.
`CE_DEFAULTS__WALL_MS=30000` or `CE_SANDBOX__RUNTIME=runsc`. Each number has
a default (the `DEFAULT_*` constants) and a hard ceiling (the `le=` bound) that
no configuration can exceed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ce_ws.languages import load_languages
from ce_ws.origins import parse_authority, parse_origin
from ce_ws.secret import same_secret

KIB = 1024
MIB = 1024 * KIB

#: The engine's OCI runtimes a container may use: runc (the kernel) or runsc (gVisor).
Runtime = Literal["runc", "runsc"]

# The lowest value of each run limit: for the settings and a client's request alike.
MIN_WALL_MS = 100
MIN_IDLE_MS = 100
MIN_CPU_MS = 100
MIN_MEMORY_MB = 16
MIN_CPUS = 0.05
MIN_PIDS = 8
MIN_OUTPUT_BYTES = 1

DEFAULT_WALL_MS = 60_000
DEFAULT_IDLE_MS = 30_000
#: A batch run's CPU time: its wall clock's, so at one CPU the wall clock ends it first.
DEFAULT_CPU_MS = 60_000
MAX_CPU_MS = 3_600_000
# Terminal runs (a person at a prompt): long clocks, a short CPU budget.
DEFAULT_TERMINAL_WALL_MS = 15 * 60_000
DEFAULT_TERMINAL_IDLE_MS = 5 * 60_000
DEFAULT_TERMINAL_CPU_MS = 10_000
DEFAULT_TERMINAL_MAX_WALL_MS = 60 * 60_000
DEFAULT_TERMINAL_MAX_IDLE_MS = 30 * 60_000
DEFAULT_TERMINAL_MAX_CPU_MS = 10 * 60_000
DEFAULT_MEMORY_MB = 256
DEFAULT_CPUS = 1.0
DEFAULT_PIDS = 64
DEFAULT_OUTPUT_BYTES = 1 * MIB
DEFAULT_RUNSC_PIDS_HEADROOM = 384
MAX_RUNSC_PIDS_HEADROOM = 4096
DEFAULT_RUNSC_MEMORY_HEADROOM_MB = 64
MAX_RUNSC_MEMORY_HEADROOM_MB = 4096
#: Codapi's own default step timeout; its widget gives up on a request after 10 s.
DEFAULT_CODAPI_WALL_MS = 5_000


class RunLimits(BaseModel):
    """The limits a client may lower per run (all in the wire contract's units)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_ms: int = Field(DEFAULT_WALL_MS, ge=MIN_WALL_MS, le=3_600_000)
    idle_ms: int = Field(DEFAULT_IDLE_MS, ge=MIN_IDLE_MS, le=3_600_000)
    #: CPU time of the run stage, all its processes together (status `timeout`, `exit.limit` "cpu").
    cpu_ms: int = Field(DEFAULT_CPU_MS, ge=MIN_CPU_MS, le=MAX_CPU_MS)
    memory_mb: int = Field(DEFAULT_MEMORY_MB, ge=MIN_MEMORY_MB, le=16_384)
    cpus: float = Field(DEFAULT_CPUS, ge=MIN_CPUS, le=64)
    pids: int = Field(DEFAULT_PIDS, ge=MIN_PIDS, le=4096)
    output_bytes: int = Field(DEFAULT_OUTPUT_BYTES, ge=MIN_OUTPUT_BYTES, le=1024 * MIB)


class RunMaxima(RunLimits):
    """The most a client may ask for; a field left unset keeps its own maximum."""

    wall_ms: int = Field(600_000, ge=MIN_WALL_MS, le=3_600_000)
    idle_ms: int = Field(600_000, ge=MIN_IDLE_MS, le=3_600_000)
    cpu_ms: int = Field(600_000, ge=MIN_CPU_MS, le=MAX_CPU_MS)
    memory_mb: int = Field(1024, ge=MIN_MEMORY_MB, le=16_384)
    cpus: float = Field(2.0, ge=MIN_CPUS, le=64)
    pids: int = Field(256, ge=MIN_PIDS, le=4096)
    output_bytes: int = Field(16 * MIB, ge=MIN_OUTPUT_BYTES, le=1024 * MIB)


#: The limits a terminal run's clocks replace; the others are the batch runs' too.
TERMINAL_CLOCKS = ("wall_ms", "idle_ms", "cpu_ms")


class TerminalLimits(BaseModel):
    """The clocks of terminal runs (the WebSocket's), which differ from batch runs'.

    A person at a prompt thinks for minutes and burns nothing meanwhile, so
    the wall and idle clocks are long and the CPU budget ends a busy loop.
    Memory, CPUs, pids and output are `defaults`/`maxima` for every run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    wall_ms: int = Field(DEFAULT_TERMINAL_WALL_MS, ge=MIN_WALL_MS, le=3_600_000)
    idle_ms: int = Field(DEFAULT_TERMINAL_IDLE_MS, ge=MIN_IDLE_MS, le=3_600_000)
    cpu_ms: int = Field(DEFAULT_TERMINAL_CPU_MS, ge=MIN_CPU_MS, le=MAX_CPU_MS)
    max_wall_ms: int = Field(DEFAULT_TERMINAL_MAX_WALL_MS, ge=MIN_WALL_MS, le=3_600_000)
    max_idle_ms: int = Field(DEFAULT_TERMINAL_MAX_IDLE_MS, ge=MIN_IDLE_MS, le=3_600_000)
    max_cpu_ms: int = Field(DEFAULT_TERMINAL_MAX_CPU_MS, ge=MIN_CPU_MS, le=MAX_CPU_MS)

    @model_validator(mode="after")
    def _defaults_within_maxima(self) -> TerminalLimits:
        for name in TERMINAL_CLOCKS:
            if getattr(self, name) > getattr(self, f"max_{name}"):
                raise ValueError(f"terminal.{name} is above terminal.max_{name}")
        return self


#: The engine of a server that names none (`CE_SANDBOX__ENGINES` unset).
LOCAL_ENGINE = "local"
MAX_ENGINES = 16
#: An engine's name: in URLs (`/admin/engines/<name>/drain`), labels and folder names.
ENGINE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
DEFAULT_ENGINE_CAPACITY = 32
MAX_ENGINE_CAPACITY = 1024
MIN_ADMIN_TOKEN_CHARS = 16


def _local_socket(url: str, setting: str) -> str:
    # Staging folders are bind-mounted from this host's disk, so the
    # engine must run here: only its Unix socket is ever right.
    if not url.startswith("unix:///"):
        raise ValueError(
            f"{setting}={url!r}: only a local engine's socket, "
            "unix:///path/to/docker.sock, is supported (runs mount folders of "
            "this machine, so the engine must run on it)"
        )
    return url


class EngineTls(BaseModel):
    """The client side of an engine's TLS (`dockerd --tlsverify`): files of this machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The CA that signed the engine's certificate.
    ca: str
    #: This server's client certificate and its key, signed by the CA the engine trusts.
    cert: str
    key: str


class EngineSettings(BaseModel):
    """One Docker engine of several (`CE_SANDBOX__ENGINES`) and how many runs it takes.

    `url` is its Unix socket, or `tcp://host:port` with `tls` client
    certificates (never plain TCP: the engine's API is root on its host).
    Either way the engine runs on this machine: runs bind-mount its folders.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ENGINE_NAME_PATTERN)
    url: str
    tls: EngineTls | None = None
    #: Runs (boxes in use) at once on this engine; warm idle boxes do not count.
    capacity: int = Field(DEFAULT_ENGINE_CAPACITY, ge=1, le=MAX_ENGINE_CAPACITY)

    @model_validator(mode="after")
    def _socket_or_tls(self) -> EngineSettings:
        where = f"CE_SANDBOX__ENGINES {self.name!r}"
        if self.url.startswith("tcp://"):
            if self.tls is None:
                raise ValueError(
                    f'{where}: a tcp:// engine needs "tls" {{"ca", "cert", "key"}}'
                    " (dockerd --tlsverify): plain TCP would give its host to anyone who reaches it"
                )
            parts = urlsplit(self.url)
            if not parts.hostname or parts.port is None or parts.path not in ("", "/"):
                raise ValueError(f"{where}: {self.url!r} is not tcp://host:port")
            return self
        if self.tls is not None:
            raise ValueError(f'{where}: "tls" is for a tcp:// engine, not a Unix socket')
        _local_socket(self.url, f"{where} url")
        return self


class SandboxSettings(BaseModel):
    """Fixed parts of every container: image, runtime and kernel-side caps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    docker_url: str = "unix:///var/run/docker.sock"
    #: Several engines, each run placed on the healthy one with the most free
    #: capacity, e.g. [{"name": "a", "url": "unix:///var/run/docker.sock",
    #: "capacity": 32}, ...]. Unset: the one engine at `docker_url`.
    engines: list[EngineSettings] = Field(default_factory=list, max_length=MAX_ENGINES)
    image: str = "code-executor-runtime"
    runtime: Runtime = "runc"
    #: Languages that run under another runtime than `runtime`, e.g. {"c": "runsc"}.
    language_runtimes: dict[str, Runtime] = Field(default_factory=dict)
    compile_ms: int = Field(30_000, ge=1_000, le=300_000)
    #: Let the launcher run a preloaded language's program in its own,
    #: already started interpreter (languages.toml `preloaded`).
    preload: bool = True
    nofile: int = Field(256, ge=16, le=65_536)
    fsize_bytes: int = Field(16 * MIB, ge=MIB, le=1024 * MIB)
    tmp_bytes: int = Field(64 * MIB, ge=MIB, le=1024 * MIB)
    tmp_inodes: int = Field(4096, ge=64, le=1_000_000)
    shm_bytes: int = Field(8 * MIB, ge=64 * KIB, le=256 * MIB)
    staging_root: str = "/tmp"
    #: The largest PNG `plt.show()` draws inline (the image's matplotlib
    #: backend lowers the resolution to fit, else prints a line instead);
    #: base64 makes it a third larger in the output, which the cap counts.
    plot_max_bytes: int = Field(256 * KIB, ge=KIB, le=16 * MIB)
    control_timeout_s: float = Field(10.0, gt=0, le=120)
    reap_interval_s: float = Field(60.0, ge=1, le=3600)
    #: gVisor's own tasks (the Sentry's threads and, on the ptrace platform,
    #: several host tasks per program process) count against the container's
    #: pids cgroup, so under runsc `PidsLimit` is the run's `pids` plus this.
    #: The Sentry alone takes about 50-70 and each program process about 5
    #: more: the default leaves room for about 70 processes at `pids=64`.
    runsc_pids_headroom: int = Field(DEFAULT_RUNSC_PIDS_HEADROOM, ge=0, le=MAX_RUNSC_PIDS_HEADROOM)
    #: The Sentry's own memory (about 20 MiB, plus about 4 MiB per program
    #: process) is charged to the container, so under runsc `Memory` and
    #: `MemorySwap` are the run's `memory_mb` plus this.
    runsc_memory_headroom_mb: int = Field(
        DEFAULT_RUNSC_MEMORY_HEADROOM_MB, ge=0, le=MAX_RUNSC_MEMORY_HEADROOM_MB
    )

    @field_validator("docker_url")
    @classmethod
    def _docker_url_is_a_local_socket(cls, url: str) -> str:
        return _local_socket(url, "CE_SANDBOX__DOCKER_URL")

    @field_validator("engines")
    @classmethod
    def _engines_are_distinct(cls, engines: list[EngineSettings]) -> list[EngineSettings]:
        for field in ("name", "url"):
            values = [getattr(engine, field) for engine in engines]
            if repeated := sorted({value for value in values if values.count(value) > 1}):
                raise ValueError(f"CE_SANDBOX__ENGINES: each {field} once, {repeated} repeats")
        return engines

    def engine_list(self) -> list[EngineSettings]:
        """The engines runs go to: the configured ones, else the one at `docker_url`."""
        return self.engines or [
            EngineSettings(name=LOCAL_ENGINE, url=self.docker_url, capacity=MAX_ENGINE_CAPACITY)
        ]

    def runtime_for(self, language: str) -> Runtime:
        """The runtime that runs `language` (a canonical name)."""
        return self.language_runtimes.get(language, self.runtime)


class CapacitySettings(BaseModel):
    """How many runs at once, per client and in the waiting line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_runs: int = Field(32, ge=1, le=1024)
    max_runs_per_client: int = Field(8, ge=1, le=1024)
    #: Runs waiting for any free slot (a client below its own cap), all clients.
    max_queue: int = Field(32, ge=0, le=10_000)
    #: Runs of one client waiting only for its own cap; they take no shared place.
    max_queue_per_client: int = Field(8, ge=0, le=10_000)
    max_connections: int = Field(512, ge=1, le=100_000)
    #: Open WebSockets from one client address; more are closed with 1008.
    max_connections_per_client: int = Field(32, ge=1, le=100_000)
    #: HTTP requests one client address may have open at once (WebSockets
    #: apart); more are answered 429 and closed before their body is read.
    max_http_per_client: int = Field(32, ge=1, le=100_000)
    runs_per_minute: int = Field(120, ge=1, le=100_000)
    #: Refused messages one WebSocket may earn a minute (then it is closed
    #: 1008), and refused `execute` requests one address may (then it gets
    #: 429 before its body is read).
    refusals_per_minute: int = Field(60, ge=1, le=100_000)
    #: Control messages (`signal`, `resize`, `ping`) one WebSocket may send a
    #: second, refilled smoothly, in bursts of up to `controls_burst`; each one
    #: beyond is refused `rate_limited` (spending a refusal). A human at a
    #: terminal (or the playground, which debounces resizes) sends a few a
    #: second at most. `kill` and `signal: SIGKILL` are never limited.
    controls_per_second: int = Field(20, ge=1, le=10_000)
    controls_burst: int = Field(100, ge=1, le=100_000)
    #: How long a REST `execute` may wait in line for a slot before a 503.
    rest_queue_wait_s: float = Field(10.0, ge=0, le=300)


class PoolSettings(BaseModel):
    """Warm pool: containers started ahead of time, launcher waiting for "go"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    per_profile: int = Field(1, ge=0, le=64)
    max_total: int = Field(8, ge=0, le=512)
    #: The pool's memory limits may add up to at most this share of host memory.
    max_memory_share: float = Field(0.25, gt=0, le=0.9)
    max_age_s: float = Field(600.0, ge=1, le=86_400)
    refill_concurrency: int = Field(1, ge=1, le=16)
    #: Below this much MemAvailable the pool sheds its idle boxes and adds
    #: none until the host has 25% more than it again (0: no floor).
    min_host_available_mb: int = Field(1024, ge=0, le=1_048_576)


class ImageSettings(BaseModel):
    """How fresh the runtime image must be (checked by `python -m ce_ws doctor`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Older than this, the doctor warns: Debian's security updates may be waiting.
    max_age_days: int = Field(7, ge=1, le=90)


DEFAULT_COMPILE_CACHE_BYTES = 256 * MIB
MAX_COMPILE_CACHE_BYTES = 16 * 1024 * MIB
DEFAULT_COMPILE_CACHE_AGE_S = 86_400.0
MAX_COMPILE_CACHE_AGE_S = 30 * 86_400.0
DEFAULT_CACHED_BINARY_BYTES = 32 * MIB
MAX_CACHED_BINARY_BYTES = 1024 * MIB


class CompileCacheSettings(BaseModel):
    """Compiled programs kept by (image recipe, language, compile command, files)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    #: The cached programs together; the oldest go first past it.
    max_bytes: int = Field(DEFAULT_COMPILE_CACHE_BYTES, ge=MIB, le=MAX_COMPILE_CACHE_BYTES)
    #: A program older than this is compiled again.
    max_age_s: float = Field(DEFAULT_COMPILE_CACHE_AGE_S, ge=1, le=MAX_COMPILE_CACHE_AGE_S)
    #: A bigger program is run but not kept.
    max_binary_bytes: int = Field(
        DEFAULT_CACHED_BINARY_BYTES, ge=64 * KIB, le=MAX_CACHED_BINARY_BYTES
    )
    #: A WebSocket `prepare` compiles a program ahead of its `run` (the
    #: playground sends one when the typing pauses).
    prepare: bool = True
    #: A `prepare` takes a run slot only while fewer than this share of
    #: `capacity.max_runs` are taken and no run waits: it never delays a run.
    prepare_max_share: float = Field(0.5, gt=0, le=1)


DEFAULT_JUDGE0_DATABASE = "judge0.sqlite3"
DEFAULT_JUDGE0_MAX_SUBMISSIONS = 10_000
MAX_JUDGE0_MAX_SUBMISSIONS = 1_000_000
DEFAULT_JUDGE0_MAX_AGE_S = 86_400.0
MAX_JUDGE0_MAX_AGE_S = 30 * 86_400.0
DEFAULT_JUDGE0_MAX_BATCH = 20
MAX_JUDGE0_MAX_BATCH = 100
DEFAULT_JUDGE0_MAX_QUEUE = 100
MAX_JUDGE0_MAX_QUEUE = 10_000


class Judge0Settings(BaseModel):
    """The Judge0-compatible surface: where its submissions are kept, and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The SQLite file of submissions and their results (opened on first use).
    database: str = Field(DEFAULT_JUDGE0_DATABASE, min_length=1)
    #: The most submissions kept; the oldest go first.
    max_submissions: int = Field(
        DEFAULT_JUDGE0_MAX_SUBMISSIONS, ge=1, le=MAX_JUDGE0_MAX_SUBMISSIONS
    )
    #: Submissions older than this are forgotten.
    max_age_s: float = Field(DEFAULT_JUDGE0_MAX_AGE_S, ge=60, le=MAX_JUDGE0_MAX_AGE_S)
    #: Submissions in one batch (`max_submission_batch_size`).
    max_batch: int = Field(DEFAULT_JUDGE0_MAX_BATCH, ge=1, le=MAX_JUDGE0_MAX_BATCH)
    #: Submissions not yet ended, all clients (`max_queue_size`); beyond it 503.
    max_queue: int = Field(DEFAULT_JUDGE0_MAX_QUEUE, ge=1, le=MAX_JUDGE0_MAX_QUEUE)


class CodapiSettings(BaseModel):
    """The Codapi-compatible surface under `/codapi` (docs/compat/codapi.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Any page may run code through `/codapi` (`Access-Control-Allow-Origin: *`),
    #: not only the server's own origin and `CE_ALLOWED_ORIGINS`.
    allow_any_origin: bool = False
    #: The wall-clock limit of a Codapi run, if lower than `CE_DEFAULTS__WALL_MS`:
    #: a Codapi request carries no limits, and its widget waits 10 s at most.
    wall_ms: int = Field(DEFAULT_CODAPI_WALL_MS, ge=MIN_WALL_MS, le=3_600_000)


class PistonSettings(BaseModel):
    """The Piston v2 surface under `/piston` (docs/compat/piston.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A `/connect` socket that sends no `init` this long after connecting is
    #: closed 4001 (Piston's own deadline is 1 s).
    init_timeout_s: float = Field(1.0, gt=0, le=60)


DEFAULT_MAX_VIEWERS = 200
MAX_MAX_VIEWERS = 5_000
DEFAULT_REPLAY_BYTES = 64 * KIB
MAX_REPLAY_BYTES = 4 * MIB


class SharingSettings(BaseModel):
    """Live rooms (contract section 3): how many, how large, how forgiving."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Viewers watching one room at once; one more is refused `busy`.
    max_viewers: int = Field(DEFAULT_MAX_VIEWERS, ge=1, le=MAX_MAX_VIEWERS)
    #: Rooms open on this server, all presenters; one more is refused `busy`.
    max_rooms: int = Field(100, ge=1, le=10_000)
    #: Rooms one client address may hold open; one more is refused `rate_limited`.
    rooms_per_client: int = Field(2, ge=1, le=1_000)
    #: Output kept to redraw a late viewer's terminal (the replay).
    replay_bytes: int = Field(DEFAULT_REPLAY_BYTES, ge=KIB, le=MAX_REPLAY_BYTES)
    #: How long a presenter who dropped may take its room back with its key.
    resume_s: float = Field(60.0, ge=0, le=3_600)
    #: A room closes this long after it was opened, however busy.
    max_room_s: float = Field(6 * 3_600.0, ge=60, le=7 * 86_400)
    #: Bytes one viewer may have waiting (output and messages); past it the
    #: viewer is resynced with a fresh replay. At least the replay itself.
    viewer_queue_bytes: int = Field(256 * KIB, ge=2 * KIB, le=64 * MIB)
    #: A viewer stuck this long in one frame is dropped 1013.
    viewer_stall_s: float = Field(10.0, gt=0, le=300)
    #: The shortest time between two frames to one viewer; output arriving
    #: meanwhile joins the next frame (a keystroke's echo after a pause goes at once).
    viewer_frame_ms: int = Field(10, ge=0, le=1_000)
    #: The same while the program floods (more output in a frame than a
    #: replay): each viewer then gets its redrawn screen this often, so
    #: hundreds of viewers never take the presenter's share of the machine.
    viewer_flood_frame_ms: int = Field(100, ge=0, le=10_000)

    @model_validator(mode="after")
    def _queue_holds_a_replay(self) -> SharingSettings:
        if self.viewer_queue_bytes < 2 * self.replay_bytes:
            raise ValueError(
                f"CE_SHARING__VIEWER_QUEUE_BYTES={self.viewer_queue_bytes} must be at least"
                f" twice CE_SHARING__REPLAY_BYTES={self.replay_bytes} (a resync queues a replay)"
            )
        return self


class RecordingsSettings(BaseModel):
    """Recordings of runs (asciicast v2 files), and how much of them is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Where recordings are written (created if missing); nothing else goes there.
    dir: str = Field("recordings", min_length=1)
    #: All recordings together; the oldest go first. One recording stops
    #: growing at this size.
    max_bytes: int = Field(512 * MIB, ge=64 * KIB, le=1024 * 1024 * MIB)
    #: Recordings older than this are deleted.
    max_age_s: float = Field(7 * 86_400.0, ge=1, le=365 * 86_400)


#: A policy destination: `host:port`, the host a name (or `*.` and a name for
#: its subdomains), the port 1-65535. Addresses are refused on purpose: the
#: proxy reaches a name, never an IP a client chose.
_DESTINATION = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
    r":([1-9][0-9]{0,4})$"
)
MAX_POLICY_DESTINATIONS = 256
DEFAULT_PROXY_MEMORY_MB = 128
DEFAULT_PROXY_PIDS = 64


class NetworkPolicy(BaseModel):
    """One allowlist: the destinations a run under this policy may reach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    destinations: list[str] = Field(min_length=1, max_length=MAX_POLICY_DESTINATIONS)
    #: When set, only a client presenting one of these tokens may use the policy.
    tokens: list[str] = Field(default_factory=list)

    @field_validator("destinations")
    @classmethod
    def _destinations_are_host_ports(cls, destinations: list[str]) -> list[str]:
        for entry in destinations:
            match = _DESTINATION.match(entry.lower())
            if match is None or int(match.group(6)) > 65_535 or _looks_like_address(entry):
                raise ValueError(
                    f"destination {entry!r} is not host:port (a name, `*.` for its"
                    " subdomains, a port 1-65535; no IP addresses)"
                )
        return [entry.lower() for entry in destinations]

    def allows(self, credentials: tuple[str | None, ...]) -> bool:
        """Whether a client presenting these credentials may use this policy."""
        if not self.tokens:
            return True
        return any(
            given is not None and any(same_secret(given, token) for token in self.tokens)
            for given in credentials
        )


def _looks_like_address(entry: str) -> bool:
    host = entry.rpartition(":")[0]
    return all(part.isdigit() for part in host.split("."))


class NetworkSettings(BaseModel):
    """Network by allowlist: the policies a run may name, and the egress proxy's limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Policy name -> allowlist, e.g. {"pypi": ["pypi.org:443"]} or
    #: {"course": {"destinations": ["api.example.org:443"], "tokens": ["..."]}}.
    policies: dict[str, NetworkPolicy] = Field(default_factory=dict)
    proxy_image: str = "code-executor-proxy"
    #: The Docker network the proxies reach destinations through; None: the
    #: server makes its own bridge network (label-owned, removed at shutdown).
    egress_network: str | None = None
    proxy_memory_mb: int = Field(DEFAULT_PROXY_MEMORY_MB, ge=32, le=4096)
    proxy_cpus: float = Field(0.5, ge=0.05, le=8)
    proxy_pids: int = Field(DEFAULT_PROXY_PIDS, ge=16, le=1024)
    #: Connections one run may hold open through its proxy at once (more are refused).
    max_connections_per_run: int = Field(64, ge=1, le=10_000)
    #: How long a proxy may take to answer on its port after it started.
    proxy_start_s: float = Field(10.0, gt=0, le=120)
    #: Every run's own network is a small subnet of this block, chosen by the
    #: server (the engine's default pools allow only about 30 networks).
    subnet_pool: str = "10.213.0.0/16"
    subnet_prefix: int = Field(29, ge=24, le=29)

    @field_validator("policies", mode="before")
    @classmethod
    def _list_is_destinations(cls, policies: object) -> object:
        if isinstance(policies, dict):
            return {
                name: {"destinations": value} if isinstance(value, list) else value
                for name, value in policies.items()
            }
        return policies

    @field_validator("policies")
    @classmethod
    def _policy_names_are_plain(
        cls, policies: dict[str, NetworkPolicy]
    ) -> dict[str, NetworkPolicy]:
        for name in policies:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
                raise ValueError(
                    f"policy name {name!r}: use 1-32 lowercase letters, digits, _ or -"
                )
        return policies

    @field_validator("subnet_pool")
    @classmethod
    def _subnet_pool_is_private(cls, block: str) -> str:
        network = ipaddress.ip_network(block)
        if not (network.version == 4 and network.is_private and network.prefixlen <= 24):
            raise ValueError(f"subnet_pool {block!r} must be a private IPv4 block of /24 or more")
        return block


class IdentitySettings(BaseModel):
    """The browser cookie that tells a class's browsers apart (ce_ws/api/identity.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Signs the cookies (32 characters at least). Unset: each process makes
    #: its own at startup, so cookies last until a restart and differ between
    #: replicas; set it to keep identities across both.
    cookie_secret: SecretStr | None = None
    cookie_name: str = Field("ce_client", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    cookie_max_age_s: float = Field(30 * 86_400, ge=60, le=400 * 86_400)

    @field_validator("cookie_secret")
    @classmethod
    def _secret_is_long(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("CE_IDENTITY__COOKIE_SECRET must be 32 characters or more")
        return secret


class Settings(BaseSettings):
    """The whole configuration; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="CE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65_535)
    server_id: str = Field("ce-default", pattern=r"^[a-zA-Z0-9_.-]{1,64}$")
    #: Redis shared by replicas (`redis://host:port/db`, `rediss://`, `unix://`):
    #: Judge0 submissions are kept there, so any replica answers a token. Unset:
    #: this server keeps them alone (`CE_JUDGE0__DATABASE`).
    redis_url: str | None = None
    #: Where the other replicas reach this one (a viewer of a room held here
    #: who reached another replica is relayed to it), e.g. http://10.0.0.5:8080.
    #: Unset: `http://<CE_HOST>:<CE_PORT>`, this machine's name for a wildcard host.
    advertise_url: str | None = None
    allowed_origins: list[str] = Field(default_factory=list)
    #: Where browsers reach the server when that is not its own address, e.g.
    #: a TLS proxy's `https://ce.example.org`: its origin and host are its own.
    public_url: str | None = None
    #: More names a request's Host may carry (bound to 0.0.0.0, the LAN name).
    allowed_hosts: list[str] = Field(default_factory=list)
    tokens: list[str] = Field(default_factory=list)
    #: The bearer token of `/admin/...` (draining an engine). Unset: no admin API.
    admin_token: SecretStr | None = None
    #: Reverse proxies (addresses or CIDR networks) whose `Forwarded` /
    #: `X-Forwarded-For` names the client's address; from others it is ignored.
    trusted_proxies: list[str] = Field(default_factory=list)
    max_message_bytes: int = Field(128 * KIB, ge=KIB, le=64 * MIB)
    #: A REST body must have arrived this long after its request's head (408).
    body_timeout_s: float = Field(10.0, gt=0, le=120)
    max_code_bytes: int = Field(64 * KIB, ge=KIB, le=16 * MIB)
    max_args: int = Field(64, ge=0, le=1024)
    max_args_bytes: int = Field(2 * KIB, ge=0, le=3 * KIB)
    heartbeat_s: float = Field(30.0, gt=0, le=600)
    #: A WebSocket that sends nothing this long after `hello` is closed with
    #: 1008. Above the playground's 25 s ping interval.
    first_message_s: float = Field(30.0, gt=0, le=600)
    shutdown_grace_s: float = Field(5.0, ge=0, le=120)
    defaults: RunLimits = Field(default_factory=RunLimits)
    maxima: RunMaxima = Field(default_factory=RunMaxima)
    terminal: TerminalLimits = Field(default_factory=TerminalLimits)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    pool: PoolSettings = Field(default_factory=PoolSettings)
    compile_cache: CompileCacheSettings = Field(default_factory=CompileCacheSettings)
    image: ImageSettings = Field(default_factory=ImageSettings)
    judge0: Judge0Settings = Field(default_factory=Judge0Settings)
    codapi: CodapiSettings = Field(default_factory=CodapiSettings)
    piston: PistonSettings = Field(default_factory=PistonSettings)
    sharing: SharingSettings = Field(default_factory=SharingSettings)
    recordings: RecordingsSettings = Field(default_factory=RecordingsSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, url: str | None) -> str | None:
        if url is not None:
            origin = parse_origin(url, path_allowed=True)
            if origin is None or origin.scheme not in ("http", "https"):
                raise ValueError(f"CE_PUBLIC_URL={url!r} is not an http(s)://host[:port] URL")
        return url

    @field_validator("advertise_url")
    @classmethod
    def _advertise_url_is_http(cls, url: str | None) -> str | None:
        if url is not None:
            origin = parse_origin(url)
            if origin is None or origin.scheme not in ("http", "https"):
                raise ValueError(
                    f"CE_ADVERTISE_URL={url!r} is not an http(s)://host[:port] URL"
                    " (no path), e.g. http://10.0.0.5:8080"
                )
        return url

    def replica_url(self) -> str:
        """The URL the other replicas reach this one at (`CE_ADVERTISE_URL` or its default)."""
        if self.advertise_url is not None:
            return self.advertise_url.rstrip("/")
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @field_validator("admin_token")
    @classmethod
    def _admin_token_is_long(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_ADMIN_TOKEN_CHARS:
            raise ValueError(
                f"CE_ADMIN_TOKEN must be {MIN_ADMIN_TOKEN_CHARS} characters or more"
                " (e.g. from `openssl rand -hex 16`)"
            )
        return token

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_redis(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"CE_REDIS_URL={url!r} must start with redis://, rediss:// or unix://"
                " (e.g. redis://127.0.0.1:6379/0)"
            )
        return url

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_networks(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"CE_TRUSTED_PROXIES entry {cidr!r} is not an address or a CIDR network"
                    " such as 10.0.0.0/8 or ::1"
                ) from None
        return cidrs

    @field_validator("allowed_hosts")
    @classmethod
    def _allowed_hosts_are_names(cls, names: list[str]) -> list[str]:
        for name in names:
            authority = parse_authority(name)
            if authority is None or authority[1] is not None:
                raise ValueError(
                    f"CE_ALLOWED_HOSTS entry {name!r} is not a host name"
                    " (no scheme, no port; IPv6 in brackets)"
                )
        return names

    @model_validator(mode="after")
    def _language_runtimes_name_languages(self) -> Settings:
        if not self.sandbox.language_runtimes:
            return self  # the usual case: no need to read the languages file
        known = set(load_languages().by_name)
        unknown = sorted(set(self.sandbox.language_runtimes) - known)
        if unknown:
            raise ValueError(
                f"CE_SANDBOX__LANGUAGE_RUNTIMES names unknown languages {unknown};"
                f" use the names of {sorted(known)}"
            )
        return self

    @model_validator(mode="after")
    def _defaults_within_maxima(self) -> Settings:
        for name, value in self.defaults:
            if value > getattr(self.maxima, name):
                raise ValueError(f"defaults.{name}={value} is above maxima.{name}")
        return self

    def run_limits(self, *, terminal: bool) -> tuple[RunLimits, RunLimits]:
        """The defaults and maxima of a run: a terminal run's clocks are `terminal`'s."""
        if not terminal:
            return self.defaults, self.maxima
        clocks = self.terminal
        defaults = {name: getattr(clocks, name) for name in TERMINAL_CLOCKS}
        maxima = {name: getattr(clocks, f"max_{name}") for name in TERMINAL_CLOCKS}
        return (
            self.defaults.model_copy(update=defaults),
            self.maxima.model_copy(update=maxima),
        )
