"""Reads a container's memory peak, CPU time and refused forks from the host's cgroup files.

The engine's stats are gone once a container stops, so the session samples
these while the run is alive and keeps the last reading.
"""

from __future__ import annotations

from pathlib import Path

from ce_ws.sandbox.base import Usage

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _first_int(candidates: list[Path], *, key: str | None = None) -> int | None:
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        if key is None:
            first = text.split()[0]
            return int(first) if first.isdigit() else None  # pids.max may say "max"
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return None


def read_usage(container_id: str) -> Usage:
    """Sample the container's cgroup (v1 or v2, cgroupfs or systemd driver)."""
    v2_dirs = [
        CGROUP_ROOT / "docker" / container_id,
        CGROUP_ROOT / "system.slice" / f"docker-{container_id}.scope",
    ]
    memory = _first_int(
        [CGROUP_ROOT / "memory" / "docker" / container_id / "memory.max_usage_in_bytes"]
        + [d / "memory.peak" for d in v2_dirs]
    )
    cpu_ns = _first_int([CGROUP_ROOT / "cpuacct" / "docker" / container_id / "cpuacct.usage"])
    if cpu_ns is None:
        usec = _first_int([d / "cpu.stat" for d in v2_dirs], key="usage_usec")
        cpu_ns = None if usec is None else usec * 1000
    oom_kills = _first_int(
        [CGROUP_ROOT / "memory" / "docker" / container_id / "memory.oom_control"]
        + [d / "memory.events" for d in v2_dirs],
        key="oom_kill",
    )
    pids_dirs = [CGROUP_ROOT / "pids" / "docker" / container_id, *v2_dirs]
    return Usage(
        memory_peak_bytes=memory,
        cpu_ns=cpu_ns,
        oom_kills=oom_kills,
        processes=_first_int([d / "pids.current" for d in pids_dirs]),
        process_limit=_first_int([d / "pids.max" for d in pids_dirs]),
        forks_refused=_first_int([d / "pids.events" for d in pids_dirs], key="max"),
    )
