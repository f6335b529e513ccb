"""The container spec of docs/architecture.md, checked field by field.

`violations(body, info)` compares one container against the baseline: `body`
is the create request the server sent, `info` the engine's inspect right after
creation. Every field is checked on what the engine applied, and every field
of the spec must also be present in the request (a field the engine happens to
default the same way must still be asked for, so dropping it is caught).
The expected values are written out here on purpose, not imported from
`ce_ws.sandbox.spec`: a change there must not quietly change the test too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SECCOMP_FILE = Path(__file__).resolve().parents[1] / "docker" / "seccomp.json"
SANDBOX_USER = "65534:65534"
#: The commands a box may wait in: the runtime image's launcher, preloaded node or ruby.
LAUNCHERS = (
    ["/opt/ce/launch"],
    ["node", "--require", "/opt/ce/launch.js", "/opt/ce/launch.js"],
    ["ruby", "-r/opt/ce/launch.rb", "/work/main.rb"],
)
ENV_KEYS = {
    "TERM", "HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE", "MPLBACKEND", "INLINE_PLOT_MAX_BYTES",
    "TINI_KILL_PROCESS_GROUP",
}  # fmt: skip
#: What a networked run's container gets on top: the proxy variables.
PROXY_ENV_KEYS = {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"}
#: A networked run's container: no IPv6 at all (the bridge's link-local address is the host's).
NETWORKED_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
PROXY_USER = "13:13"
MIB = 1024 * 1024
RUNSC_MEMORY_HEADROOM_MB = 64


def assert_oom_peak(peak: int | None, limit_mb: int) -> None:
    """An OOM run's reported peak: the limit it reached, and never far above it.

    The server reports at least the limit for an `oom` run (the cgroup may be
    gone before its last sample), so only the upper side can tell a wrong
    figure: the run's cgroup, gVisor's headroom included, caps it.
    """
    assert peak is not None, "no memory peak for an oom run"
    ceiling = (limit_mb + RUNSC_MEMORY_HEADROOM_MB + 1) * MIB
    assert limit_mb * MIB <= peak <= ceiling, f"peak {peak} outside the limit's window"


RUNSC_PIDS_HEADROOM = 384

#: Docker's default masked paths (the list replaces them) plus the host's boot line and boot id.
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
    "/proc/cmdline", "/proc/sys/kernel/random/boot_id",
]  # fmt: skip

#: Every HostConfig field the server must set on each container.
REQUIRED_HOST_FIELDS = (
    "Binds", "ReadonlyRootfs", "MaskedPaths", "Tmpfs", "CapDrop", "SecurityOpt", "NetworkMode", "Memory",
    "MemorySwap", "NanoCpus", "PidsLimit", "Ulimits", "Init", "IpcMode", "ShmSize",
    "CgroupnsMode", "OomScoreAdj", "LogConfig", "AutoRemove", "Runtime",
)  # fmt: skip
#: Fields the engine accepts but does not report back as sent.
_NOT_ECHOED = {"ConsoleSize"}
#: Must be empty/false/default: nothing shared with the host or other containers.
_MUST_BE_EMPTY = (
    "CapAdd", "Devices", "DeviceRequests", "PortBindings", "Links", "VolumesFrom",
    "ExtraHosts", "Dns", "GroupAdd", "Sysctls", "Mounts", "PidMode", "UTSMode",
    "UsernsMode", "CgroupParent", "Cgroup", "Privileged", "PublishAllPorts", "OomKillDisable",
)  # fmt: skip
_TMP_OPTIONS = re.compile(
    r"^rw,nosuid,nodev,size=(?P<size>\d+),nr_inodes=(?P<inodes>\d+),mode=1777,(?P<exec>exec|noexec)$"
)


def _seccomp_profile() -> Any:
    return json.loads(SECCOMP_FILE.read_text())


def _owned_by(label: str, owner: str) -> bool:
    return label == owner or label.startswith(f"{owner}-")


def _check_config(config: dict[str, Any], owner: str) -> list[str]:
    bad = []
    labels = config.get("Labels") or {}
    run = labels.get("ce.run", "")
    if not _owned_by(labels.get("ce.owner", ""), owner) or not run:
        bad.append(f"labels {labels}")
    if config.get("User") != SANDBOX_USER:
        bad.append(f"User {config.get('User')!r}")
    networked = _policy(config) is not None
    # The engine leaves the field out of an inspect when it is false.
    if bool(config.get("NetworkDisabled")) is networked:
        bad.append(f"NetworkDisabled is {config.get('NetworkDisabled')!r}")
    env_keys = {item.partition("=")[0] for item in config.get("Env") or []}
    if env_keys != (ENV_KEYS | PROXY_ENV_KEYS if networked else ENV_KEYS):
        bad.append(f"Env keys {sorted(env_keys)}")
    if config.get("Cmd") not in LAUNCHERS or config.get("Entrypoint"):
        bad.append(f"Cmd {config.get('Cmd')} Entrypoint {config.get('Entrypoint')}")
    if not (config.get("OpenStdin") and config.get("StdinOnce")):
        bad.append("stdin not open-once")
    return bad


def _policy(config: dict[str, Any]) -> str | None:
    """The network policy of a run's box, from its profile label (None: no network)."""
    try:
        policy: str | None = json.loads((config.get("Labels") or {})["ce.profile"]).get("network")
    except (KeyError, ValueError):
        return None
    return policy


def _check_network(host: dict[str, Any], run: str, networked: bool) -> list[str]:
    """No network; or the run's own network, the proxy as its only resolver, no IPv6."""
    if not networked:
        return (
            []
            if host.get("NetworkMode") == "none"
            else [f"NetworkMode {host.get('NetworkMode')!r}"]
        )
    bad = []
    if host.get("NetworkMode") != f"ce-{run}":
        bad.append(f"NetworkMode {host.get('NetworkMode')!r}, want the run's own ce-{run}")
    if len(host.get("Dns") or []) != 1:
        bad.append(f"Dns {host.get('Dns')}, want the proxy's address only")
    if host.get("Sysctls") != NETWORKED_SYSCTLS:
        bad.append(f"Sysctls {host.get('Sysctls')}")
    return bad


def _check_host(
    host: dict[str, Any], owner: str, run: str, *, networked: bool = False
) -> list[str]:
    bad = _check_network(host, run, networked)
    expected: dict[str, Any] = {
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "Init": True,
        "IpcMode": "private",
        "CgroupnsMode": "private",
        "OomScoreAdj": 1000,
        "AutoRemove": False,
    }
    bad += [f"{k}={host.get(k)!r}, want {v!r}" for k, v in expected.items() if host.get(k) != v]
    if sorted(host.get("MaskedPaths") or []) != sorted(MASKED_PATHS):
        bad.append(f"MaskedPaths {host.get('MaskedPaths')}")
    if (host.get("LogConfig") or {}).get("Type") != "none":
        bad.append(f"LogConfig {host.get('LogConfig')}")
    if host.get("Runtime") not in {"runc", "runsc"}:
        bad.append(f"Runtime {host.get('Runtime')!r}")
    allowed = {"Dns", "Sysctls"} if networked else set()
    bad += [
        f"{k}={host[k]!r} should be empty"
        for k in _MUST_BE_EMPTY
        if host.get(k) and k not in allowed
    ]
    binds = host.get("Binds") or []
    # The staging folder, and for compiled languages the compile cache's folder.
    # A server beside the suite's own has `<owner>-<suffix>` as its id.
    cache = rf"/\S+/ce-cache-{re.escape(owner)}(-[\w.-]+)?:/opt/ce/cache:ro"
    tmp_exec = ",exec" in (host.get("Tmpfs") or {}).get("/tmp", "")
    if (
        len(binds) not in {1, 2}
        or not re.fullmatch(
            rf"/\S+/ce-{re.escape(owner)}(-[\w.-]+)?-{re.escape(run)}:/work:ro", binds[0]
        )
        or (len(binds) == 2 and not (tmp_exec and re.fullmatch(cache, binds[1])))
    ):
        bad.append(f"Binds {binds}")
    bad += _check_security(host)
    bad += _check_limits(host)
    return bad


def _check_security(host: dict[str, Any]) -> list[str]:
    options = host.get("SecurityOpt") or []
    seccomp = [o.removeprefix("seccomp=") for o in options if o.startswith("seccomp=")]
    bad = []
    if sorted(o for o in options if not o.startswith("seccomp=")) != ["no-new-privileges=true"]:
        bad.append(f"SecurityOpt {[o[:40] for o in options]}")
    if len(seccomp) != 1 or json.loads(seccomp[0]) != _seccomp_profile():
        bad.append("seccomp profile is not docker/seccomp.json")
    return bad


def _check_limits(host: dict[str, Any]) -> list[str]:
    bad = []
    memory = host.get("Memory") or 0
    if memory <= 0 or host.get("MemorySwap") != memory:
        bad.append(f"Memory {memory} MemorySwap {host.get('MemorySwap')}")
    for name in ("NanoCpus", "PidsLimit", "ShmSize"):
        if not (host.get(name) or 0) > 0:
            bad.append(f"{name} unset")
    if (host.get("ShmSize") or 0) > 256 * MIB:
        bad.append(f"ShmSize {host.get('ShmSize')}")
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host.get("Ulimits") or []}
    if not _ulimits_ok(ulimits):
        bad.append(f"Ulimits {ulimits}")
    tmpfs = host.get("Tmpfs") or {}
    if not _tmpfs_ok(tmpfs):
        bad.append(f"Tmpfs {tmpfs}")
    return bad


def _ulimits_ok(ulimits: dict[str, tuple[int, int]]) -> bool:
    if set(ulimits) != {"nofile", "fsize", "core"} or ulimits["core"] != (0, 0):
        return False
    return all(soft == hard and soft > 0 for soft, hard in (ulimits["nofile"], ulimits["fsize"]))


def _tmpfs_ok(tmpfs: dict[str, str]) -> bool:
    match = _TMP_OPTIONS.match(tmpfs.get("/tmp", ""))
    if set(tmpfs) != {"/tmp"} or match is None:
        return False
    return int(match["size"]) <= 1024 * MIB and int(match["inodes"]) <= 1_000_000


def _check_applied(body_host: dict[str, Any], host: dict[str, Any]) -> list[str]:
    missing = [f"request lacks HostConfig.{k}" for k in REQUIRED_HOST_FIELDS if k not in body_host]
    differs = [
        f"engine applied HostConfig.{k}={host.get(k)!r}, asked {v!r}"
        for k, v in body_host.items()
        if k not in _NOT_ECHOED and host.get(k) != v
    ]
    return missing + [d[:300] for d in differs]


def violations(body: dict[str, Any], info: dict[str, Any], *, owner: str) -> list[str]:
    """Every way this container departs from the spec (empty when it conforms)."""
    config = info.get("Config") or {}
    run = (config.get("Labels") or {}).get("ce.run", "")
    host = info.get("HostConfig") or {}
    if (config.get("Labels") or {}).get("ce.role") == "proxy":
        return proxy_violations(config, host)
    return (
        _check_config(config, owner)
        + _check_host(host, owner, run, networked=_policy(config) is not None)
        + _check_profile(config, host)
        + _check_applied(body.get("HostConfig") or {}, host)
    )


def _check_profile(config: dict[str, Any], host: dict[str, Any]) -> list[str]:
    """The limits the engine applied are exactly those of the box's profile.

    Under runsc, gVisor's own threads and memory get the default headroom
    (SECURITY.md) on top of the run's pids and memory.
    """
    try:
        profile = json.loads((config.get("Labels") or {})["ce.profile"])
    except (KeyError, ValueError):
        return ["no ce.profile label"]
    runsc = profile.get("runtime") == "runsc"
    tmp = _TMP_OPTIONS.match((host.get("Tmpfs") or {}).get("/tmp", ""))
    expected = {
        "Runtime": profile.get("runtime"),
        "Memory": (profile.get("memory_mb", 0) + (RUNSC_MEMORY_HEADROOM_MB if runsc else 0)) * MIB,
        "PidsLimit": profile.get("pids", 0) + (RUNSC_PIDS_HEADROOM if runsc else 0),
        "Tty": profile.get("tty"),
        "/tmp exec": profile.get("tmp_exec"),
    }
    applied = {
        "Runtime": host.get("Runtime"),
        "Memory": host.get("Memory"),
        "PidsLimit": host.get("PidsLimit"),
        "Tty": config.get("Tty"),
        "/tmp exec": tmp is not None and tmp["exec"] == "exec",
    }
    bad = [
        f"{name}={applied[name]!r}, profile says {want!r}"
        for name, want in expected.items()
        if applied[name] != want
    ]
    nano_cpus = host.get("NanoCpus") or 0
    if abs(nano_cpus - profile.get("cpus", 0) * 1e9) > 1:  # truncated to whole nanoCPUs
        bad.append(f"NanoCpus={nano_cpus}, profile says {profile.get('cpus')} CPUs")
    return bad


def proxy_violations(config: dict[str, Any], host: dict[str, Any]) -> list[str]:
    """The egress proxy's hardening: Squid's own user, read-only, no capabilities, limits."""
    bad = []
    if config.get("User") != PROXY_USER:
        bad.append(f"proxy User {config.get('User')!r}")
    expected: dict[str, Any] = {
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges=true"],
        "Privileged": False,
        "Init": True,
    }
    bad += [f"proxy {k}={host.get(k)!r}" for k, v in expected.items() if host.get(k) != v]
    if host.get("Binds") or host.get("Mounts") or host.get("CapAdd") or host.get("Devices"):
        bad.append("proxy has mounts, devices or capabilities (the engine socket?)")
    memory = host.get("Memory") or 0
    if memory <= 0 or host.get("MemorySwap") != memory:
        bad.append(f"proxy Memory {memory}")
    if not (host.get("PidsLimit") or 0) > 0 or not (host.get("NanoCpus") or 0) > 0:
        bad.append("proxy pids or CPU limit unset")
    if (host.get("LogConfig") or {}).get("Type") != "none":
        bad.append(f"proxy LogConfig {host.get('LogConfig')}")
    return bad
