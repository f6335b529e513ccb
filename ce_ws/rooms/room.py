"""One room: the presenter's code and runs, fanned out to its viewers.

The room is a `Tap` on each run its presenter starts: it sees the run as the
presenter does and queues it for every viewer without waiting (`Fanout`), so
the program is paced by the presenter alone. A viewer that falls behind is
resynced (the room's state, then the terminal's replay) or dropped; a
viewer's connection hears of it through its `Watcher`.

    LIVE ──presenter drops──▶ WAITING ──key within resume_s──▶ LIVE
      │                          │
      └──unshare / expiry / shutdown / window over──▶ CLOSED (final)
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from typing import Protocol

from ce_ws.config import SharingSettings
from ce_ws.errors import Busy, UnknownRoom
from ce_ws.protocol import (
    CodeMessage,
    Exit,
    FileView,
    PresenterState,
    RoomClosed,
    RoomCode,
    ServerMessage,
    Started,
    TerminalSize,
    Viewers,
    Watching,
)
from ce_ws.runs.fanout import Fanout, Viewer, ViewerBounds, ViewerSink
from ce_ws.types import StreamId

log = logging.getLogger(__name__)

#: How long viewers get to take their last frames (`room_closed`) at the end.
_CLOSE_DELIVERY_S = 1.0
_PRESENTER_SEND_S = 5.0


class RoomState(enum.Enum):
    LIVE = "live"  # the presenter is connected
    WAITING = "waiting"  # the presenter dropped; its key takes the room back until resume_s
    CLOSED = "closed"  # over: viewers told `room_closed`; final


class Presenter(Protocol):
    """The connection presenting a room."""

    async def send(self, message: ServerMessage) -> None:
        """A message to the presenter (`viewers`, `room_closed`)."""

    def room_lost(self) -> None:
        """The room is no longer this connection's (closed, or taken back elsewhere)."""


class Watcher(Protocol):
    """The connection watching a room."""

    def room_left(self, dropped: str | None) -> None:
        """No longer watching: the room closed (None), or the viewer was dropped (why)."""


class Room:
    """A presenter's room: its state, its viewers, its timers."""

    def __init__(
        self,
        *,
        room_id: str,
        key: str,
        client_key: str,
        settings: SharingSettings,
        presenter: Presenter,
        on_closed: Callable[[Room], None],
    ) -> None:
        self.room_id = room_id
        self.key = key
        self.client_key = client_key
        self.state = RoomState.LIVE
        self.expires_at = time.time() + settings.max_room_s
        self._settings = settings
        self._presenter: Presenter | None = presenter
        self._on_closed = on_closed
        self._code: RoomCode | None = None
        self._run: Started | None = None
        self._size = (80, 24)
        self._watchers: dict[Viewer, Watcher] = {}
        self._fanout = Fanout(
            replay_bytes=settings.replay_bytes,
            bounds=ViewerBounds(
                queue_bytes=settings.viewer_queue_bytes,
                stall_s=settings.viewer_stall_s,
                frame_interval_s=settings.viewer_frame_ms / 1000,
                flood_frame_interval_s=settings.viewer_flood_frame_ms / 1000,
            ),
            greeting=lambda: [self._watching()],
        )
        self._fanout.replays_output = False
        self._count_changed = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._tell_presenter_the_count()),
            asyncio.create_task(self._close_after(settings.max_room_s, "expired")),
        ]
        self._resume_window: asyncio.Task[None] | None = None

    @property
    def viewers(self) -> int:
        """Viewers watching now (a joining one is counted as soon as it is attached)."""
        return self._fanout.viewers

    # -- the presenter's side ------------------------------------------------

    def set_code(self, message: CodeMessage) -> None:
        """The presenter's editor changed: viewers get the new content."""
        files = [FileView(**f.model_dump()) for f in message.files] if message.files else None
        self._code = RoomCode(language=message.language, code=message.code, files=files)
        self._fanout.message(self._code)

    def presenter_left(self, presenter: Presenter) -> None:
        """The presenter's connection ended: wait `resume_s` for it to come back."""
        if self._presenter is not presenter or self.state is not RoomState.LIVE:
            return
        self._presenter = None
        self.state = RoomState.WAITING
        self._fanout.message(PresenterState(online=False))
        self._resume_window = asyncio.create_task(
            self._close_after(self._settings.resume_s, "presenter_left")
        )

    def take_back(self, presenter: Presenter) -> None:
        """A connection with the key takes the room (the old one, if still there, loses it)."""
        if self.state is RoomState.CLOSED:
            raise UnknownRoom("this room is closed; share a new one")
        if self._resume_window is not None:
            self._resume_window.cancel()
            self._resume_window = None
        previous, self._presenter = self._presenter, presenter
        if previous is not None and previous is not presenter:
            previous.room_lost()
        if self.state is RoomState.WAITING:
            self.state = RoomState.LIVE
            self._fanout.message(PresenterState(online=True))
        self._count_changed.set()

    async def close(self, reason: str) -> None:
        """End the room (idempotent): viewers and presenter get `room_closed`."""
        if self.state is RoomState.CLOSED:
            return
        self.state = RoomState.CLOSED
        self._on_closed(self)
        closed = RoomClosed(reason=reason)
        self._fanout.message(closed)
        watchers, self._watchers = list(self._watchers.values()), {}
        for watcher in watchers:
            watcher.room_left(None)
        presenter, self._presenter = self._presenter, None
        current = asyncio.current_task()
        for task in [*self._tasks, self._resume_window]:
            if task is not None and task is not current:
                task.cancel()
        if presenter is not None:
            presenter.room_lost()
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(_PRESENTER_SEND_S):
                    await presenter.send(closed)
        await self._fanout.aclose(_CLOSE_DELIVERY_S)
        log.info("room %s closed: %s", self.room_id, reason)

    # -- the viewers' side ---------------------------------------------------

    def watch(self, sink: ViewerSink, watcher: Watcher) -> Viewer:
        """A new viewer: `watching`, the replay when a run is live, then the live stream."""
        if self.state is RoomState.CLOSED:
            raise UnknownRoom("this room is closed")
        if self.viewers >= self._settings.max_viewers:
            raise Busy(f"this room has its {self._settings.max_viewers} viewers; try again later")

        def dropped(why: str) -> None:
            if (gone := self._watchers.pop(viewer, None)) is not None:
                log.info("room %s: viewer dropped: %s", self.room_id, why)
                gone.room_left(why)
                self._viewers_changed()

        viewer = self._fanout.attach(sink, on_drop=dropped)
        self._watchers[viewer] = watcher
        self._viewers_changed()
        return viewer

    def unwatch(self, viewer: Viewer) -> None:
        """A viewer leaves (idempotent)."""
        if self._watchers.pop(viewer, None) is not None:
            self._fanout.detach(viewer)
            self._viewers_changed()

    # -- the room as a tap on the presenter's runs --------------------------

    def message(self, message: ServerMessage) -> None:
        if isinstance(message, Started):
            self._run = message
            self._fanout.clear_replay()
            self._fanout.replays_output = True
        elif isinstance(message, Exit):
            self._run = None
            self._fanout.replays_output = False
        self._fanout.message(message)

    def output(self, data: bytes, stream: StreamId) -> None:
        self._fanout.output(data, stream)

    def resize(self, cols: int, rows: int) -> None:
        if (cols, rows) != self._size:
            self._size = (cols, rows)
            self._fanout.message(TerminalSize(cols=cols, rows=rows))

    def ended(self) -> None:
        """A run ended without an `exit` (it never started): nothing live any more."""
        self._run = None
        self._fanout.replays_output = False

    # -- inside --------------------------------------------------------------

    def _watching(self) -> Watching:
        code = self._code
        return Watching(
            room=self.room_id,
            language=code.language if code else None,
            code=code.code if code else None,
            files=code.files if code else None,
            viewers=self.viewers,
            run=self._run,
            cols=self._size[0],
            rows=self._size[1],
            presenter=self.state is RoomState.LIVE,
        )

    def _viewers_changed(self) -> None:
        self._fanout.message(Viewers(count=self.viewers))
        self._count_changed.set()

    async def _tell_presenter_the_count(self) -> None:
        """The presenter learns the latest count; changes while it is slow coalesce."""
        while True:
            await self._count_changed.wait()
            self._count_changed.clear()
            if self._presenter is not None:
                with contextlib.suppress(ConnectionError):
                    await self._presenter.send(Viewers(count=self.viewers))

    async def _close_after(self, seconds: float, reason: str) -> None:
        await asyncio.sleep(seconds)
        await self.close(reason)
