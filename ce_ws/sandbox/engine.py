"""The Docker engine connection, its error translation, reaping.

One `Engine` per configured engine (`SandboxSettings.engine_list()`), opened
by its `DockerSandbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any

import aiodocker
import aiodocker.networks
import aiohttp
from aiodocker.containers import DockerContainer

from ce_ws.config import EngineTls, SandboxSettings
from ce_ws.errors import EngineUnreachable, SandboxError, SandboxNotFound, SandboxStopped
from ce_ws.sandbox.compile_cache import CompileCache
from ce_ws.sandbox.events import EngineEvents
from ce_ws.sandbox.staging import staging_dirs

if TYPE_CHECKING:  # the egress module builds on this one
    from ce_ws.sandbox.egress import Egress

log = logging.getLogger(__name__)

RUN_LABEL = "ce.run"
OWNER_LABEL = "ce.owner"
#: The box profile as JSON: what the container was created for (see `BoxProfile`).
PROFILE_LABEL = "ce.profile"
#: Called with each new container and its create body before the server uses it
#: (the test suite checks every container against the spec this way).
CreationHook = Callable[[DockerContainer, dict[str, Any]], Awaitable[None]]
#: aiodocker's status for "cannot connect to the engine".
_CANNOT_CONNECT = 900
_CONCURRENT_REMOVALS = 8
_REMOVAL_ATTEMPTS = 3


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Translate engine failures into `SandboxError` (the one boundary)."""
    try:
        yield
    except aiodocker.DockerError as exc:
        if exc.status == _CANNOT_CONNECT:
            raise unreachable(action, exc.message) from exc
        raise _refusal(exc)(f"container engine refused to {action}: {exc.message}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise unreachable(action, str(exc)) from exc
    except TimeoutError as exc:
        raise SandboxError(f"container engine did not {action} in time") from exc


def _refusal(exc: aiodocker.DockerError) -> type[SandboxError]:
    """What an engine's refusal says became of the container."""
    if exc.status == 404:
        return SandboxNotFound
    if exc.status == 409 and "is not running" in exc.message:
        return SandboxStopped
    return SandboxError


def unreachable(action: str, detail: str) -> EngineUnreachable:
    """The error of a call the engine did not answer, saying what to do."""
    return EngineUnreachable(
        f"the container engine is not reachable (it may be restarting); try again in a few"
        f" seconds [could not {action}: {detail}]"
    )


def _connect(url: str, tls: EngineTls | None) -> tuple[aiohttp.BaseConnector, str]:
    """The connector for an engine's `unix://` socket or its `tcp://` TLS port, and its URL.

    The default connector allows 100 connections and waits forever for a
    free one; every attach holds one for its whole life: no limit.
    """
    if tls is None:
        return aiohttp.UnixConnector(path=url.removeprefix("unix://"), limit=0), "unix://localhost"
    try:
        context = ssl.create_default_context(cafile=tls.ca)
        context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise SandboxError(
            f"cannot use the TLS files of the engine at {url} ({exc});"
            ' check its "tls" in CE_SANDBOX__ENGINES'
        ) from exc
    return aiohttp.TCPConnector(ssl=context, limit=0), "https://" + url.removeprefix("tcp://")


class Engine:
    """The aiodocker client plus what is shared by every box of this server."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        url: str,
        tls: EngineTls | None = None,
        server_id: str,
        seccomp_profile: str,
        on_created: CreationHook | None = None,
    ) -> None:
        self.settings = settings
        #: The engine's socket, `unix:///...`, or its TLS port, `tcp://host:port`.
        self.url = url
        #: The owner label of this engine's containers and the prefix of their folders.
        self.server_id = server_id
        self.seccomp_profile = seccomp_profile
        self._on_created = on_created
        self._cleanups: set[asyncio.Task[None]] = set()
        # The engine serializes much of a removal; hundreds at once would each
        # time out waiting. A line keeps every removal's own deadline honest.
        self._removals = asyncio.Semaphore(_CONCURRENT_REMOVALS)
        #: Box ids whose container this process owns (running or warm): the reaper spares them.
        self.live_boxes: set[str] = set()
        #: The proxies and run networks, when the server has network policies.
        self._egress: Egress | None = None
        #: Compiled programs kept for the next run of the same files (None: off).
        self.compile_cache: CompileCache | None = None
        #: Called with the seconds each container took to create and start (for metrics).
        self.on_box_started: Callable[[float], None] = lambda seconds: None
        self._connector, docker_host = _connect(url, tls)
        self.docker = aiodocker.Docker(
            url=docker_host,
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=settings.control_timeout_s),
        )
        self.events = EngineEvents(
            self.docker, owner_filter=f"{OWNER_LABEL}={server_id}", probe=self.version
        )

    def egress(self) -> Egress:
        """The egress proxies; raises `SandboxError` when no policy is configured."""
        if self._egress is None:
            raise SandboxError("this server has no network policies (CE_NETWORK__POLICIES)")
        return self._egress

    def use_egress(self, egress: Egress) -> None:
        """Set the egress proxies once, at startup."""
        self._egress = egress

    def clean_up(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a cleanup to completion even if its caller is cancelled."""
        task = asyncio.create_task(work)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    async def finish_cleanups(self) -> None:
        """Wait (bounded) for every cleanup started so far."""
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=2 * self.settings.control_timeout_s)

    async def close(self) -> None:
        """Finish pending cleanups, then close the client; called once at shutdown."""
        await self.finish_cleanups()
        await self.docker.close()
        await self._connector.close()

    async def create_container(self, config: dict[str, Any], *, name: str) -> DockerContainer:
        """Create a container (a create cut short by cancellation is removed by `destroy`)."""
        with engine_errors("create a container"):
            async with self.control_timeout():
                # Shielded: a create cancelled in flight still makes a container,
                # and without its id nothing could remove it.
                creating = asyncio.ensure_future(self._create(config, name))
                try:
                    return await asyncio.shield(creating)
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await creating
                    raise

    async def _create(self, config: dict[str, Any], name: str) -> DockerContainer:
        container = await self.docker.containers.create(config, name=name)
        self.events.track(container.id)
        if self._on_created is not None:
            await self._on_created(container, config)
        return container

    def control_timeout(self) -> asyncio.Timeout:
        """The deadline of one control call (create, kill, remove...)."""
        return asyncio.timeout(self.settings.control_timeout_s)

    async def remove_container(self, container: DockerContainer) -> None:
        """Force-remove a container (gone already is fine); retries, then raises `SandboxError`."""
        for attempt in range(1, _REMOVAL_ATTEMPTS + 1):
            try:
                async with self._removals:
                    with engine_errors("remove a container"):
                        async with self.control_timeout():
                            await container.delete(force=True)
                break
            except SandboxNotFound:
                break
            except SandboxError:
                if attempt == _REMOVAL_ATTEMPTS:
                    raise
        self.events.forget(container.id)

    async def remove_network(self, name_or_id: str) -> None:
        """Disconnect every member, then remove a network (gone already is fine)."""
        network = aiodocker.networks.DockerNetwork(self.docker, name_or_id)  # type: ignore[no-untyped-call]
        with contextlib.suppress(SandboxNotFound), engine_errors("remove a network"):
            async with self.control_timeout():
                info = await network.show()
                for container_id in info.get("Containers") or {}:
                    with contextlib.suppress(aiodocker.DockerError):
                        await network.disconnect({"Container": container_id, "Force": True})
                await network.delete()

    async def version(self) -> dict[str, Any]:
        """The engine's version document; raises `SandboxError` if unreachable."""
        with engine_errors("report its version"):
            async with self.control_timeout():
                result: dict[str, Any] = await self.docker.version()
                return result

    async def image_labels(self, image: str) -> dict[str, str] | None:
        """The labels of an image, or None when the image is absent."""
        try:
            with engine_errors(f"inspect image {image}"):
                async with self.control_timeout():
                    info = await self.docker.images.inspect(image)
        except SandboxNotFound:
            return None
        labels: dict[str, str] = info.get("Config", {}).get("Labels") or {}
        return labels

    async def image_id(self, image: str) -> str | None:
        """The id the image's name points at now, or None when the image is absent."""
        try:
            with engine_errors(f"inspect image {image}"):
                async with self.control_timeout():
                    info = await self.docker.images.inspect(image)
        except SandboxNotFound:
            return None
        return str(info["Id"])

    async def reap(self, *, spare_live: bool = True) -> int:
        """Remove this server's containers and staging folders that no live box owns.

        Returns how many it removed. At shutdown `spare_live=False` removes all.
        """
        removed = 0
        with engine_errors("list containers"):
            async with self.control_timeout():
                containers = await self.docker.containers.list(
                    all=True, filters={"label": [f"{OWNER_LABEL}={self.server_id}"]}
                )
        for container in containers:
            # Checked now, not before the listing: a box may have started meanwhile.
            if spare_live and container["Labels"].get(RUN_LABEL, "") in self.live_boxes:
                continue
            with contextlib.suppress(SandboxError):
                await self.remove_container(container)
                removed += 1
        removed += await self._reap_networks(spare_live)
        folders = await asyncio.to_thread(staging_dirs, self.settings.staging_root, self.server_id)
        for box_id, path in folders.items():
            # A box is live from before its folder exists until after it is removed.
            if not (spare_live and box_id in self.live_boxes):
                await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
                removed += 1
        return removed

    async def _reap_networks(self, spare_live: bool) -> int:
        """Remove this server's networks (run networks, the egress one) no live item owns."""
        with engine_errors("list networks"):
            async with self.control_timeout():
                networks = await self.docker.networks.list(
                    filters={"label": [f"{OWNER_LABEL}={self.server_id}"]}
                )
        removed = 0
        for network in networks:
            if spare_live and (network.get("Labels") or {}).get(RUN_LABEL, "") in self.live_boxes:
                continue
            with contextlib.suppress(SandboxError):
                await self.remove_network(network["Id"])
                removed += 1
        return removed
