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
LAUNCHER = "/opt/ce/launch"
ENV_KEYS = {"TERM", "HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE"}
MIB = 1024 * 1024
RUNSC_MEMORY_HEADROOM_MB = 64
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
    if config.get("NetworkDisabled") is not True:
        bad.append("NetworkDisabled is not true")
    env_keys = {item.partition("=")[0] for item in config.get("Env") or []}
    if env_keys != ENV_KEYS:
        bad.append(f"Env keys {sorted(env_keys)}")
    if (config.get("Cmd") or [None])[0] != LAUNCHER or config.get("Entrypoint"):
        bad.append(f"Cmd {config.get('Cmd')} Entrypoint {config.get('Entrypoint')}")
    if not (config.get("OpenStdin") and config.get("StdinOnce")):
        bad.append("stdin not open-once")
    return bad


def _check_host(host: dict[str, Any], owner: str, run: str) -> list[str]:
    bad = []
    expected: dict[str, Any] = {
        "ReadonlyRootfs": True,
        "CapDrop": ["ALL"],
        "NetworkMode": "none",
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
    bad += [f"{k}={host[k]!r} should be empty" for k in _MUST_BE_EMPTY if host.get(k)]
    binds = host.get("Binds") or []
    # The staging folder, and for compiled languages the compile cache's folder.
    cache = rf"/\S+/ce-cache-{re.escape(owner)}:/opt/ce/cache:ro"
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
    return (
        _check_config(config, owner)
        + _check_host(host, owner, run)
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
