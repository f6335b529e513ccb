"""The Docker engine connection, its error translation, OOM events, reaping.

One `Engine` per server process, opened by the `docker_engine` cleanup context.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer

from ce_ws.config import SandboxSettings
from ce_ws.errors import SandboxError, SandboxNotFound
from ce_ws.sandbox.staging import staging_dirs

log = logging.getLogger(__name__)

RUN_LABEL = "ce.run"
OWNER_LABEL = "ce.owner"
#: The box profile as JSON: what the container was created for (see `BoxProfile`).
PROFILE_LABEL = "ce.profile"
#: Called with each new container and its create body before the server uses it
#: (the test suite checks every container against the spec this way).
CreationHook = Callable[[DockerContainer, dict[str, Any]], Awaitable[None]]
_EVENTS_RETRY_S = 1.0
_CONCURRENT_REMOVALS = 8
_REMOVAL_ATTEMPTS = 3


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Translate engine failures into `SandboxError` (the one boundary)."""
    try:
        yield
    except aiodocker.DockerError as exc:
        error = SandboxNotFound if exc.status == 404 else SandboxError
        raise error(f"container engine refused to {action}: {exc.message}") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise SandboxError(f"container engine not reachable to {action}: {exc}") from exc
    except TimeoutError as exc:
        raise SandboxError(f"container engine did not {action} in time") from exc


class Engine:
    """The aiodocker client plus what is shared by every box of this server."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        server_id: str,
        seccomp_profile: str,
        on_created: CreationHook | None = None,
    ) -> None:
        self.settings = settings
        self.server_id = server_id
        self.seccomp_profile = seccomp_profile
        self._on_created = on_created
        self._oom_killed: set[str] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        # The engine serializes much of a removal; hundreds at once would each
        # time out waiting. A line keeps every removal's own deadline honest.
        self._removals = asyncio.Semaphore(_CONCURRENT_REMOVALS)
        #: Box ids whose container this process owns (running or warm): the reaper spares them.
        self.live_boxes: set[str] = set()
        #: Called with the seconds each container took to create and start (for metrics).
        self.on_box_started: Callable[[float], None] = lambda seconds: None
        # The default connector allows 100 connections and waits forever for a
        # free one; every attach holds one for its whole life.
        self._connector = aiohttp.UnixConnector(
            path=settings.docker_url.removeprefix("unix://"), limit=0
        )
        self.docker = aiodocker.Docker(
            url="unix://localhost",
            connector=self._connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=settings.control_timeout_s),
        )

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
        self.forget(container.id)

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

    def was_oom_killed(self, container_id: str) -> bool:
        """Whether the engine reported an OOM kill inside this container."""
        return container_id in self._oom_killed

    def forget(self, container_id: str) -> None:
        """Drop what was recorded about a removed container."""
        self._oom_killed.discard(container_id)

    async def watch_events(self) -> None:
        """Record `oom` events of our containers; resubscribes when the stream ends."""
        filters = {
            "type": ["container"],
            "event": ["oom"],
            "label": [f"{OWNER_LABEL}={self.server_id}"],
        }
        while True:
            try:
                await self._follow_events(json.dumps(filters))
            except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
                log.warning("engine events stream failed (%s); resubscribing", exc)
            await asyncio.sleep(_EVENTS_RETRY_S)

    async def _follow_events(self, filters: str) -> None:
        """Read the events stream until it ends; raises what ended it, if anything."""
        events = self.docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        # `run` publishes None when the stream ends and raises what broke it.
        streaming = asyncio.ensure_future(events.run(filters=filters))
        try:
            while (event := await subscriber.get()) is not None:
                # `Actor.ID`; the older top-level `id` is gone from newer APIs.
                self._oom_killed.add(event.get("Actor", {}).get("ID") or event.get("id", ""))
            await streaming
        finally:
            streaming.cancel()
            await asyncio.gather(streaming, return_exceptions=True)

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
        folders = await asyncio.to_thread(staging_dirs, self.settings.staging_root, self.server_id)
        for box_id, path in folders.items():
            # A box is live from before its folder exists until after it is removed.
            if not (spare_live and box_id in self.live_boxes):
                await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
                removed += 1
        return removed
