"""The seam between runs and sandboxes: what a backend offers, in plain types.

The session layer (`ce_ws.runs`) depends on this module only; it imports no
container engine, so `import ce_ws.runs` works (and its unit tests run) on a
machine without Docker. `ce_ws.sandbox.fleet` is the real backend (one
`ce_ws.sandbox.docker` per engine).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from ce_ws.config import RunLimits, Runtime
from ce_ws.languages import DEFAULT_LAUNCHER, WORK_DIR
from ce_ws.types import OutputSink, StreamId


@dataclass(frozen=True, slots=True)
class Usage:
    """What a box used, as last sampled from its cgroup."""

    memory_peak_bytes: int | None
    cpu_ns: int | None
    #: Processes the kernel killed for reaching the memory limit, so far.
    oom_kills: int | None = None
    #: Tasks in the container now, and the most its pids limit allows.
    processes: int | None = None
    process_limit: int | None = None
    #: New processes the pids limit refused, so far.
    forks_refused: int | None = None

    @property
    def nears_process_limit(self) -> bool:
        """Past half the pids limit: a fork bomb may be growing.

        Under gVisor nothing refuses one before the limit takes the whole
        sandbox down, and the cgroup that would say so goes with it: the run
        samples often from here on (`Box` judges by the last sample).
        """
        if self.processes is None or not self.process_limit:
            return False
        return 2 * self.processes >= self.process_limit

    def with_processes_of(self, earlier: Usage) -> Usage:
        """This sample, with the pids readings of `earlier` where it has none.

        The engine removes a dead container's cgroups one controller at a
        time: a last sample can find the memory readings but not the pids ones.
        """
        if self.processes is not None:
            return self
        return replace(
            self,
            processes=earlier.processes,
            process_limit=earlier.process_limit,
            forks_refused=earlier.forks_refused,
        )


@dataclass(frozen=True, slots=True)
class BoxProfile:
    """Everything fixed when a container is created: what a warm box must match."""

    memory_mb: int
    cpus: float
    pids: int
    tty: bool
    tmp_exec: bool
    runtime: Runtime
    #: The network policy the box's network is for; None: no network at all.
    network: str | None = None
    #: The container's command: the launcher that waits for "go" (`Language.box_launcher`).
    launcher: tuple[str, ...] = DEFAULT_LAUNCHER

    @classmethod
    def of(
        cls,
        limits: RunLimits,
        *,
        tty: bool,
        tmp_exec: bool,
        runtime: Runtime,
        network: str | None = None,
        launcher: tuple[str, ...] = DEFAULT_LAUNCHER,
    ) -> BoxProfile:
        return cls(
            limits.memory_mb, limits.cpus, limits.pids, tty, tmp_exec, runtime, network, launcher
        )

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The files under /work the launcher opens while it waits (see languages.toml)."""
        prefix = f"{WORK_DIR}/"
        return tuple(arg.removeprefix(prefix) for arg in self.launcher if arg.startswith(prefix))

    @property
    def limits(self) -> RunLimits:
        """The limits fixed at create time (the others are the session's to enforce)."""
        return RunLimits(memory_mb=self.memory_mb, cpus=self.cpus, pids=self.pids)


@dataclass(frozen=True, slots=True)
class BoxPlan:
    """What one run needs from the sandbox; built by the session."""

    profile: BoxProfile
    files: list[tuple[str, bytes]]
    size: tuple[int, int]


@dataclass(frozen=True, slots=True)
class CompileExit:
    """How the compile stage ended: the compiler's exit, or the whole box stopping."""

    exit_code: int | None
    oom_killed: bool
    box_stopped: bool = False
    #: The program is in the compile cache: a run of the same files skips its compile.
    kept: bool = False


@dataclass(frozen=True, slots=True)
class BoxExit:
    """How the container's program ended, as the engine saw it."""

    exit_code: int | None
    signal: str | None
    oom_killed: bool
    usage: Usage = field(default_factory=lambda: Usage(None, None))
    #: The whole sandbox died at its process limit (gVisor), not the program by itself.
    process_limit_reached: bool = False


class RunBox(Protocol):
    """The terminal side of a run: one started box whose launcher waits for "go"."""

    box_id: str

    async def compile(
        self, argv: list[str], *, binary: str, timeout_s: float, sink: OutputSink
    ) -> CompileExit | None:
        """Compile `binary` beside the waiting launcher (or take it from a cache).

        None when the compiler timed out.
        """

    async def go(self, argv: list[str], *, in_launcher: bool = False) -> None:
        """Start the program; returns once it runs.

        `in_launcher`: a preloaded interpreter's command, run by the waiting launcher itself.
        """

    async def read(self) -> tuple[StreamId, bytes] | None:
        """The next chunk of output; None at its end."""

    async def write(self, data: bytes) -> None:
        """Bytes to the program's stdin (awaiting it is backpressure)."""

    async def close_stdin(self) -> None:
        """End of input without a terminal."""

    async def resize(self, cols: int, rows: int) -> None:
        """The terminal size the program sees."""

    async def signal(self, name: str) -> None:
        """Deliver a contract signal to every process of the program."""

    async def kill(self) -> None:
        """Stop everything in the box now (idempotent)."""

    async def sample_usage(self) -> Usage:
        """Read the box's usage now (remembered for `wait_exit`)."""

    async def wait_exit(self) -> BoxExit:
        """Wait for the program to end and say how."""


class Sandbox(Protocol):
    """Opens boxes. Leaving the context removes the box, bounded, whatever happened."""

    def open_box(self, plan: BoxPlan) -> AbstractAsyncContextManager[RunBox]:
        """A started box holding `plan`'s files."""


@dataclass(frozen=True, slots=True)
class PoolFigures:
    """What /readyz and /metrics say about a backend's warm pool."""

    idle: int
    hits: int
    misses: int


#: An engine takes runs (`ready`), takes none but keeps its live ones (`draining`),
#: or does not answer (`down`: its runs ended `error`, it rejoins when it answers).
EngineCondition = Literal["ready", "draining", "down"]


@dataclass(frozen=True, slots=True)
class EngineState:
    """One engine as /readyz, /metrics and the admin API show it."""

    name: str
    condition: EngineCondition
    #: Why it takes no run (`down`, `draining`, image absent or out of date), else None.
    reason: str | None
    runs: int
    capacity: int
    pool_idle: int | None

    @property
    def takes_runs(self) -> bool:
        return self.condition == "ready" and self.reason is None and self.runs < self.capacity


def not_ready_because(engines: list[EngineState]) -> str | None:
    """Why no run could start now on any of these engines, or None."""
    if any(engine.takes_runs for engine in engines):
        return None

    def why(engine: EngineState) -> str:
        return engine.reason or f"it runs {engine.runs} programs, its capacity"

    if len(engines) == 1:
        return why(engines[0])  # one engine: its own words, as before there were several
    return "no engine can take a run now: " + "; ".join(
        f"{engine.name}: {why(engine)}" for engine in engines
    )


class SandboxObserver(Protocol):
    """Told what a backend does in the background (the server's metrics)."""

    def box_started(self, seconds: float) -> None:
        """A box was created and started (for a run or for the pool)."""

    def reaped(self, count: int) -> None:
        """The reaper removed `count` leftovers."""

    def run_placed(self, engine: str) -> None:
        """A run's box is being opened on this engine."""

    def proxy_decision(
        self, *, policy: str, run_id: str | None, destination: str, verdict: str
    ) -> None:
        """An egress proxy allowed or refused one connection of a run."""


class Backend(Sandbox, Protocol):
    """A sandbox with a lifetime: what `create_app` runs for the whole server."""

    async def start(self, observer: SandboxObserver) -> None:
        """Connect and start background work; called once at startup."""

    async def aclose(self) -> None:
        """Stop background work and remove everything left; called once at shutdown."""

    async def engine_states(self) -> list[EngineState]:
        """Each engine's condition now (probing it: reachable, image current)."""

    def drain(self, engine: str) -> None:
        """Place no new run on this engine; its live runs go on. Raises `UnknownEngine`."""

    def resume(self, engine: str) -> None:
        """Place runs on this engine again. Raises `UnknownEngine`."""

    def pool_figures(self) -> PoolFigures | None:
        """The warm pool's figures, if the backend has one."""
