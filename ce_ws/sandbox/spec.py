"""The hardened container spec. Every field is chosen here, never by a client."""

from __future__ import annotations

from typing import Any

from ce_ws.config import MIB, RunLimits, Runtime, SandboxSettings
from ce_ws.languages import DEFAULT_LAUNCHER
from ce_ws.sandbox.network import NetworkAttachment

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
    # The image's matplotlib backend: plt.show() draws inline in the terminal.
    "MPLBACKEND=module://ce_inline_plot",
    # The engine's init forwards a signal to the program's whole process
    # group, as Ctrl-C in a terminal does: a shell script's foreground
    # `sleep` gets SIGINT too, so the script stops instead of looping on.
    "TINI_KILL_PROCESS_GROUP=1",
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


#: Where a networked run finds its proxy; nothing else is reachable, so nothing else
#: is excluded (a program's own loopback servers stay direct).
NO_PROXY = "localhost,127.0.0.1,::1"


def proxy_environment(network: NetworkAttachment | None) -> list[str]:
    """The variables that point a networked run's programs at its proxy (none without)."""
    if network is None:
        return []
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
    env = [f"{name}={network.proxy_url}" for name in names]
    return [*env, f"NO_PROXY={NO_PROXY}", f"no_proxy={NO_PROXY}"]


def network_fields(network: NetworkAttachment | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The create body's and HostConfig's network fields: none at all, or the run's own network.

    A networked run's only resolver upstream is the proxy's address, where
    nothing answers DNS: the engine's resolver forwards a query for an outside
    name there, on the run's own network, and it ends there. IPv6 is off in
    the container (its link-local address would reach the bridge's).
    """
    if network is None:
        return {"NetworkDisabled": True}, {"NetworkMode": "none"}
    body = {
        "NetworkDisabled": False,
        "NetworkingConfig": {
            "EndpointsConfig": {network.network: {"IPAMConfig": {"IPv4Address": network.run_ip}}}
        },
    }
    host = {
        "NetworkMode": network.network,
        "Dns": [network.proxy_ip],
        "Sysctls": {
            "net.ipv6.conf.all.disable_ipv6": "1",
            "net.ipv6.conf.default.disable_ipv6": "1",
        },
    }
    return body, host


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
    launcher: tuple[str, ...] = DEFAULT_LAUNCHER,
    network: NetworkAttachment | None = None,
    cache_folder: str | None = None,
) -> dict[str, Any]:
    """The Engine API create body for one run's container.

    `launcher` is the command that waits for "go" (languages.toml's, never a
    client's); `cache_folder`, when given, is the compile cache's folder,
    mounted read-only.
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
    network_body, network_host = network_fields(network)
    body = {
        "Image": settings.image,
        # The program comes later, in the launcher's go line: a started
        # container can then wait in the warm pool for any program its
        # launcher runs (any language, for the default one).
        "Cmd": list(launcher),
        "Entrypoint": [],
        "User": SANDBOX_USER,
        "WorkingDir": "/work",
        "Env": [
            *ENV,
            f"INLINE_PLOT_MAX_BYTES={settings.plot_max_bytes}",
            *proxy_environment(network),
        ],
        "Labels": labels,
        "Tty": tty,
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": {
            "Binds": binds,
            "ReadonlyRootfs": True,
            "MaskedPaths": list(MASKED_PATHS),
            "Tmpfs": {"/tmp": tmp_options},
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges=true", f"seccomp={seccomp_profile}"],
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
            **network_host,
        },
    }
    return {**body, **network_body}
