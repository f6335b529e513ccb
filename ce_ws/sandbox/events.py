"""What the engine says about this server's containers, and whether it is there.

The engine's events stream is followed for the server's whole life. From it
the sandbox learns three things it cannot see otherwise: that a container's
program was OOM-killed, that a container died (an idle warm box among them),
and that the engine itself killed a container this server did not ask it to
kill (what a stopping or restarting `dockerd` does to every container). When
the stream breaks, the engine is probed until it answers again; meanwhile it
counts as unreachable, so a run asked for then is refused at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable

import aiodocker
import aiohttp

from ce_ws.errors import SandboxError

log = logging.getLogger(__name__)

_EVENTS_RETRY_S = 1.0
#: How long an exit by a signal this server did not send waits for the
#: engine's own `kill` event to arrive (it is sent before the signal).
_FOREIGN_KILL_GRACE_S = 0.5


class EngineEvents:
    """The events stream of one engine, and what it has told so far."""

    def __init__(
        self,
        docker: aiodocker.Docker,
        *,
        owner_filter: str,
        probe: Callable[[], Awaitable[object]],
    ) -> None:
        """`probe` raises `SandboxError` while the engine does not answer."""
        self._docker = docker
        self._filters = json.dumps(
            {"type": ["container"], "event": ["oom", "kill", "die"], "label": [owner_filter]}
        )
        self._probe = probe
        #: Containers made by this process and not yet removed: events of any
        #: other (one removed a moment ago) are not recorded, so nothing grows.
        self._tracked: set[str] = set()
        self._oom_killed: set[str] = set()
        self._died: set[str] = set()
        self._stopped_by_engine: set[str] = set()
        self._kills_sent: dict[str, set[int]] = {}
        self._news = asyncio.Event()
        #: False from the moment the engine stops answering until it answers again.
        self.reachable = True
        #: Why the engine is unreachable, while it is.
        self.unreachable_because = ""
        #: Called with the id of each of our containers that died.
        self.on_died: Callable[[str], None] = lambda container_id: None
        #: Called each time the stream is followed again after it ended or broke.
        self.on_back: Callable[[], None] = lambda: None

    def track(self, container_id: str) -> None:
        """Record events of this new container from now on, until `forget`."""
        self._tracked.add(container_id)

    def expect_kill(self, container_id: str, signal_name: str) -> None:
        """This server is about to ask the engine for this signal (not a foreign kill)."""
        number = signal.Signals[signal_name].value
        self._kills_sent.setdefault(container_id, set()).add(number)

    def was_oom_killed(self, container_id: str) -> bool:
        return container_id in self._oom_killed

    def has_died(self, container_id: str) -> bool:
        return container_id in self._died

    def sent_kill(self, container_id: str) -> bool:
        """Whether this server asked the engine to signal this container."""
        return bool(self._kills_sent.get(container_id))

    async def stopped_by_engine(self, container_id: str, signal_name: str) -> bool:
        """Whether the engine killed this container on its own (or vanished meanwhile).

        A stopping engine sends SIGTERM, then SIGKILL; an exit by one of them
        that this server did not ask for waits briefly for the engine's event,
        or for its `oom` event: the kernel's OOM kill is an unasked SIGKILL too.
        """
        unasked = signal_name in ("SIGTERM", "SIGKILL") and not self.sent_kill(container_id)
        if unasked:
            told = (self._stopped_by_engine, self._oom_killed)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_FOREIGN_KILL_GRACE_S):
                    while all(container_id not in record for record in told) and self.reachable:
                        self._news.clear()
                        await self._news.wait()
        return container_id in self._stopped_by_engine or not self.reachable

    def forget(self, container_id: str) -> None:
        """Drop what was recorded about a removed container."""
        self._tracked.discard(container_id)
        for record in (self._oom_killed, self._died, self._stopped_by_engine):
            record.discard(container_id)
        self._kills_sent.pop(container_id, None)

    async def follow_forever(self) -> None:
        """Follow the stream; when it ends or breaks, probe until the engine answers."""
        followed = 0
        while True:
            try:
                await self._probe()
            except SandboxError as exc:
                self._set_reachable(False, exc.message)
                await asyncio.sleep(_EVENTS_RETRY_S)
                continue
            self._set_reachable(True)
            if followed:
                # Events were missed while the stream was down: let the pool
                # and the reaper look again for themselves.
                self.on_back()
            followed += 1
            began = time.monotonic()
            try:
                await self._follow(self._filters)
            except (aiodocker.DockerError, aiohttp.ClientError, OSError) as exc:
                log.warning("engine events stream failed (%s); resubscribing", exc)
            # Probed again at once (a stopping engine is noticed before the next
            # run asks for it), unless the stream keeps ending as soon as it began.
            if time.monotonic() - began < _EVENTS_RETRY_S:
                await asyncio.sleep(_EVENTS_RETRY_S)

    def _set_reachable(self, reachable: bool, because: str = "") -> None:
        if reachable and not self.reachable:
            log.warning("container engine is back")
        elif self.reachable and not reachable:
            log.warning("container engine went away: %s", because)
        self.reachable, self.unreachable_because = reachable, because
        self._news.set()

    async def _follow(self, filters: str) -> None:
        """Read the events stream until it ends; raises what ended it, if anything."""
        events = self._docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        # `run` publishes None when the stream ends and raises what broke it.
        streaming = asyncio.ensure_future(events.run(filters=filters))
        try:
            while (event := await subscriber.get()) is not None:
                self._record(event)
            await streaming
        finally:
            streaming.cancel()
            await asyncio.gather(streaming, return_exceptions=True)
            # Ended or broken: the engine may be going away; the probe decides.
            self._news.set()

    def _record(self, event: dict[str, object]) -> None:
        actor = event.get("Actor")
        actor = actor if isinstance(actor, dict) else {}
        # `Actor.ID`; the older top-level `id` is gone from newer APIs.
        container_id = str(actor.get("ID") or event.get("id", ""))
        if container_id not in self._tracked:
            return
        action = event.get("Action") or event.get("status")
        if action == "oom":
            self._oom_killed.add(container_id)
        elif action == "kill":
            attributes = actor.get("Attributes")
            sent = attributes.get("signal", "") if isinstance(attributes, dict) else ""
            if not str(sent).isdigit() or int(sent) not in self._kills_sent.get(container_id, ()):
                self._stopped_by_engine.add(container_id)
        elif action == "die":
            self._died.add(container_id)
            self.on_died(container_id)
        self._news.set()
