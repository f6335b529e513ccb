"""The benchmarks' own engine client: counting, settling, leftovers, memory.

Everything here looks at containers by their `ce.owner` label, so only what
the benchmarks created is counted, waited for or removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer

from bench.progress import say

OWNER_LABEL = "ce.owner"
#: Every benchmark server id and the baselines' owner start with this.
PREFIX = "ce-bench"
#: Owner label of the containers the baselines start without a server.
BASELINE_OWNER = "ce-bench-baseline"
BASELINE_STAGING_PREFIX = "ce-bench-baseline-"
_POLL_S = 0.05
_CGROUP_MEMORY = Path("/sys/fs/cgroup/memory/docker")
_CGROUP_V2 = Path("/sys/fs/cgroup/system.slice")


@contextlib.asynccontextmanager
async def engine_client() -> AsyncIterator[aiodocker.Docker]:
    """An aiodocker client with no connection cap (every attach holds one)."""
    connector = aiohttp.UnixConnector(path="/var/run/docker.sock", limit=0)
    docker = aiodocker.Docker(url="unix://localhost", connector=connector)
    try:
        yield docker
    finally:
        await docker.close()
        await connector.close()


async def owned(docker: aiodocker.Docker, owner: str) -> list[DockerContainer]:
    """Every container labelled with this owner, as the engine lists them."""
    containers: list[DockerContainer] = await docker.containers.list(
        all=True, filters={"label": [f"{OWNER_LABEL}={owner}"]}
    )
    return containers


def staging_dirs(owner: str) -> list[str]:
    """Staging folders a server with this id left under /tmp."""
    return glob.glob(f"/tmp/ce-{owner}-*/")


def baseline_staging_dirs() -> list[str]:
    """Staging folders the baselines left under /tmp."""
    return glob.glob(f"/tmp/{BASELINE_STAGING_PREFIX}*/")


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What outlived its run: container ids and staging folders."""

    containers: list[str]
    staging: list[str]

    @property
    def count(self) -> int:
        return len(self.containers) + len(self.staging)


async def leftovers(docker: aiodocker.Docker, owners: Iterable[str]) -> Leftovers:
    """Containers and staging folders of these owners that exist now."""
    containers: list[str] = []
    staging: list[str] = []
    for owner in owners:
        containers += [entry.id for entry in await owned(docker, owner)]
        staging += baseline_staging_dirs() if owner == BASELINE_OWNER else staging_dirs(owner)
    return Leftovers(containers, staging)


#: The benchmarks that start baseline containers (without a server).
BASELINE_USERS = frozenset({"ttfo", "echo", "throughput", "teardown", "churn"})


async def bench_leftovers(docker: aiodocker.Docker, names: Iterable[str]) -> Leftovers:
    """What these benchmarks left: owners `ce-bench-<name>*`, their staging folders.

    Only theirs: others may be running their own benchmarks on the same
    engine (another checkout, another `--only`), and theirs are not ours.
    """
    names = list(names)
    prefixes = tuple(f"{PREFIX}-{name}" for name in names)
    if BASELINE_USERS.intersection(names):
        prefixes += (BASELINE_OWNER,)
    labelled = await docker.containers.list(all=True, filters={"label": [OWNER_LABEL]})
    containers = [c.id for c in labelled if c["Labels"].get(OWNER_LABEL, "").startswith(prefixes)]
    staging = [path for prefix in prefixes for path in glob.glob(f"/tmp/ce-{prefix}*/")]
    if BASELINE_OWNER in prefixes:
        staging += baseline_staging_dirs()
    return Leftovers(containers, staging)


async def wait_clean(
    docker: aiodocker.Docker, owners: Iterable[str], *, timeout_s: float
) -> Leftovers:
    """Leftovers after giving in-flight cleanups up to `timeout_s`."""
    owners = list(owners)
    deadline = time.monotonic() + timeout_s
    found = await leftovers(docker, owners)
    while found.count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await leftovers(docker, owners)
    return found


async def sweep(docker: aiodocker.Docker, owners: Iterable[str]) -> Leftovers:
    """Remove what is left of these owners (after it was counted); returns it."""
    return await _remove(docker, await leftovers(docker, owners))


async def sweep_all(docker: aiodocker.Docker, names: Iterable[str]) -> Leftovers:
    """Remove whatever these benchmarks left (after `bench_leftovers` counted it)."""
    return await _remove(docker, await bench_leftovers(docker, names))


async def _remove(docker: aiodocker.Docker, found: Leftovers) -> Leftovers:
    for container_id in found.containers:
        with contextlib.suppress(aiodocker.DockerError):
            await docker.containers.container(container_id).delete(force=True)
    for path in found.staging:
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
    if found.count:
        say(f"swept {len(found.containers)} containers, {len(found.staging)} staging folders")
    return found


@dataclass(frozen=True, slots=True)
class Leaks:
    """What a live server holds beyond its idle pool, once its cleanups settled."""

    containers: int
    staging: int


async def leaks_while_up(
    docker: aiodocker.Docker, server_id: str, pool_size: int, *, settle_s: float = 10.0
) -> Leaks:
    """Leftovers with the server still up: non-running containers, extra ones, stray folders.

    A container that is not running, or more running than the idle warm pool,
    is a leak; so is a staging folder no container mounts.
    """
    await wait_settled(docker, {server_id: pool_size}, timeout_s=15)
    deadline = time.monotonic() + settle_s
    while True:
        containers = await owned(docker, server_id)
        running = [c for c in containers if c["State"] == "running"]
        leaked = len(containers) - len(running) + max(0, len(running) - pool_size)
        mounted = {m.get("Source", "") for c in containers for m in c["Mounts"]}
        stray = [path for path in staging_dirs(server_id) if path.rstrip("/") not in mounted]
        if not (leaked or stray) or time.monotonic() > deadline:
            return Leaks(leaked, len(stray))
        await asyncio.sleep(0.5)  # a folder goes right after its container: let it


async def idle_count(docker: aiodocker.Docker, owner: str, *, settle_s: float = 2.0) -> int:
    """How many containers an idle server keeps (its warm pool): the count once stable."""
    deadline = time.monotonic() + 30
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        entries = await owned(docker, owner)
        running = sum(entry["State"] == "running" for entry in entries)
        count = running if running == len(entries) else -1
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since >= settle_s:
            return count
        await asyncio.sleep(0.2)
    return max(last, 0)


async def wait_settled(
    docker: aiodocker.Docker, expected: dict[str, int], *, timeout_s: float = 30.0
) -> None:
    """Wait until each owner has exactly its idle number of running containers.

    Called between samples, so one sample's removal (or a pool refill) does
    not run during the next one.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        settled = True
        for owner, count in expected.items():
            entries = await owned(docker, owner)
            if len(entries) != count or any(entry["State"] != "running" for entry in entries):
                settled = False
                break
        if settled:
            return
        await asyncio.sleep(_POLL_S)
    say(f"engine did not settle within {timeout_s:.0f}s: {expected}")


# -- memory ------------------------------------------------------------------


def _rss_bytes(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")


def _processes() -> Iterable[tuple[int, list[str]]]:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        yield int(entry.name), [part.decode(errors="replace") for part in argv if part]


def _cgroup_memory(container_id: str) -> int:
    for path in (
        _CGROUP_MEMORY / container_id / "memory.usage_in_bytes",
        _CGROUP_V2 / f"docker-{container_id}.scope" / "memory.current",
    ):
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text())
    return 0


@dataclass(frozen=True, slots=True)
class EngineMemory:
    """Memory the engine spends, split by where it lives (bytes)."""

    daemons_rss: int  # dockerd + containerd
    shims_rss: int  # the containerd shims of the given containers
    containers: int  # the containers' own cgroup usage (their processes, page cache)

    @property
    def total(self) -> int:
        return self.daemons_rss + self.shims_rss + self.containers


def engine_memory(container_ids: Iterable[str]) -> EngineMemory:
    """Sample the engine's memory for these containers now (reads /proc and cgroups)."""
    ids = set(container_ids)
    daemons = shims = 0
    for pid, argv in _processes():
        if not argv:
            continue
        name = os.path.basename(argv[0])
        if name in {"dockerd", "containerd"}:
            daemons += _rss_bytes(pid)
        elif name.startswith("containerd-shim") and "-id" in argv:
            position = argv.index("-id") + 1
            if position < len(argv) and argv[position] in ids:
                shims += _rss_bytes(pid)
    containers = sum(_cgroup_memory(container_id) for container_id in ids)
    return EngineMemory(daemons, shims, containers)
