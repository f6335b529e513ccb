"""The hardened container spec. Every field is chosen here, never by a client."""

from __future__ import annotations

from typing import Any

from ce_ws.config import MIB, RunLimits, Runtime, SandboxSettings

LAUNCHER = "/opt/ce/launch"
#: Where boxes of compiled languages see the compile cache's folder (read-only).
CACHE_MOUNT = "/opt/ce/cache"
#: The container's user and group (nobody:nogroup on Debian); no supplementary groups.
SANDBOX_UID = SANDBOX_GID = 65534
SANDBOX_USER = f"{SANDBOX_UID}:{SANDBOX_GID}"
# Nothing a person types: the engine must never treat keystrokes as a detach.
DETACH_KEYS = "ctrl-^,ctrl-_,ctrl-^,ctrl-_,ctrl-^,ctrl-_"
#: Hidden from the program (/dev/null or an empty folder bound over them).
#: Setting the list replaces the engine's default, which comes first here.
MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
    # The host's boot line and the id of its boot: nothing a program needs.
    "/proc/cmdline", "/proc/sys/kernel/random/boot_id",
)  # fmt: skip
ENV = (
    "TERM=xterm-256color",
    "HOME=/tmp",
    "LANG=C.UTF-8",
    "PATH=/usr/local/bin:/usr/bin:/bin",
    "PYTHONDONTWRITEBYTECODE=1",
)


def engine_limits(
    settings: SandboxSettings, limits: RunLimits, runtime: Runtime
) -> tuple[int, int]:
    """The container's memory (bytes) and pids limits: the run's, plus gVisor's headroom.

    Under runsc the Sentry's own threads and memory are charged to the
    container's cgroups, so they get room of their own on top of the run's.
    """
    memory_mb, pids = limits.memory_mb, limits.pids
    if runtime == "runsc":
        memory_mb += settings.runsc_memory_headroom_mb
        pids += settings.runsc_pids_headroom
    return memory_mb * MIB, pids


def container_config(
    *,
    settings: SandboxSettings,
    limits: RunLimits,
    runtime: Runtime,
    labels: dict[str, str],
    staging_path: str,
    seccomp_profile: str,
    tty: bool,
    size: tuple[int, int],
    tmp_exec: bool,
    cache_folder: str | None = None,
) -> dict[str, Any]:
    """The Engine API create body for one run's container.

    `cache_folder`, when given, is the compile cache's folder, mounted read-only.
    """
    cols, rows = size
    memory_bytes, pids = engine_limits(settings, limits, runtime)
    tmp_options = (
        f"rw,nosuid,nodev,size={settings.tmp_bytes},nr_inodes={settings.tmp_inodes},mode=1777"
    )
    tmp_options += ",exec" if tmp_exec else ",noexec"
    binds = [f"{staging_path}:/work:ro"]
    if cache_folder is not None:
        binds.append(f"{cache_folder}:{CACHE_MOUNT}:ro")
    return {
        "Image": settings.image,
        # The program comes later, in the launcher's go line: a started
        # container can then wait in the warm pool for any language.
        "Cmd": [LAUNCHER],
        "Entrypoint": [],
        "User": SANDBOX_USER,
        "WorkingDir": "/work",
        "Env": list(ENV),
        "Labels": labels,
        "Tty": tty,
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "NetworkDisabled": True,
        "HostConfig": {
            "Binds": binds,
            "ReadonlyRootfs": True,
            "MaskedPaths": list(MASKED_PATHS),
            "Tmpfs": {"/tmp": tmp_options},
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges=true", f"seccomp={seccomp_profile}"],
            "NetworkMode": "none",
            "Memory": memory_bytes,
            "MemorySwap": memory_bytes,
            "NanoCpus": int(limits.cpus * 1e9),
            "PidsLimit": pids,
            "Ulimits": [
                {"Name": "nofile", "Soft": settings.nofile, "Hard": settings.nofile},
                {"Name": "fsize", "Soft": settings.fsize_bytes, "Hard": settings.fsize_bytes},
                {"Name": "core", "Soft": 0, "Hard": 0},
            ],
            "Init": True,
            "IpcMode": "private",
            "ShmSize": settings.shm_bytes,
            "CgroupnsMode": "private",
            "OomScoreAdj": 1000,
            "LogConfig": {"Type": "none", "Config": {}},
            "AutoRemove": False,
            "Runtime": runtime,
            "ConsoleSize": [rows, cols],
        },
    }
