"""One connection's part in live rooms: the room it presents, or the one it watches.

The `Connection` hands `share`, `code`, `unshare`, `watch` and `unwatch`
here and asks `check_may_act` before anything that would run or type. A
connection presents at most one room and watches at most one, never both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from aiohttp import web

from ce_ws.api.messages import send_message
from ce_ws.api.remote_watch import RemoteRooms, RemoteWatch
from ce_ws.config import Settings
from ce_ws.errors import BadMessage, CodeTooLarge, ReadOnly, UnknownRoom
from ce_ws.protocol import (
    CloseCode,
    CodeMessage,
    ServerMessage,
    Shared,
    ShareMessage,
    WatchMessage,
)
from ce_ws.rooms.registry import RoomRegistry
from ce_ws.rooms.room import Room
from ce_ws.runs.fanout import Viewer, ViewerSink
from ce_ws.runs.tee import Tap

log = logging.getLogger(__name__)

#: A dropped viewer's close (1013) may take this long before its socket is cut:
#: the close frame waits behind what the viewer's socket already holds.
_DROP_CLOSE_S = 30.0


class Sharing:
    """The presenter's room or the watched one, for one connection."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        client_key: str,
        rooms: RoomRegistry,
        settings: Settings,
        watch_base: str,
        viewer_sink: ViewerSink,
        remote: RemoteRooms | None = None,
        address: str = "",
    ) -> None:
        """`remote` reaches rooms other replicas hold, for a viewer at `address`."""
        self._ws = ws
        self._client_key = client_key
        self._rooms = rooms
        self._settings = settings
        self._watch_base = watch_base
        self._viewer_sink = viewer_sink
        self._remote = remote
        self._address = address
        self._room: Room | None = None
        self._watched: tuple[Room, Viewer] | RemoteWatch | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def presenting(self) -> bool:
        return self._room is not None

    def taps(self) -> list[Tap]:
        """What a run of this connection feeds besides its owner: the room, if presenting."""
        return [self._room] if self._room is not None else []

    def check_may_act(self) -> None:
        """Raise `ReadOnly` while watching: a viewer may not run, type or signal."""
        if self._watched is not None:
            raise ReadOnly("this connection is watching a room (read-only); send unwatch first")

    # -- presenter -----------------------------------------------------------

    async def share(self, message: ShareMessage) -> None:
        """Open a room, take one back with its key, or repeat `shared` for the open one."""
        self.check_may_act()
        if message.room is not None or message.key is not None:
            if message.room is None or message.key is None:
                raise BadMessage("to take a room back give both room and key", field="key")
            if self._room is None or self._room.room_id != message.room:
                await self._leave_room()
                self._room = await self._rooms.take_back(message.room, message.key, self)
        elif self._room is None:
            self._room = await self._rooms.open(client_key=self._client_key, presenter=self)
        await send_message(self._ws, self._shared(self._room))

    async def code(self, message: CodeMessage) -> None:
        """The editor's content, for the viewers; size-capped like a run's code."""
        room = self._presenting()
        if message.code is not None and message.files is not None:
            raise BadMessage("give either code or files, not both", field="code")
        size = len(message.code.encode()) if message.code is not None else 0
        size += sum(len(f.content.encode()) for f in message.files or [])
        if size > self._settings.max_code_bytes:
            raise CodeTooLarge(
                f"code is {size} bytes; the limit is {self._settings.max_code_bytes}",
                field="code",
            )
        room.set_code(message)

    async def unshare(self) -> None:
        """Close the room: viewers get `room_closed` (`unshared`)."""
        room = self._presenting()
        self._room = None
        await room.close("unshared")

    # -- viewer --------------------------------------------------------------

    async def watch(self, message: WatchMessage) -> None:
        """Watch a room (leaving the one watched before); read-only from now on."""
        if self._room is not None:
            raise BadMessage("this connection presents a room; unshare it before watching")
        found = await self._rooms.where(message.room)
        await self.unwatch()
        if isinstance(found, Room):
            self._watched = (found, found.watch(self._viewer_sink, self))
            return
        if self._remote is None:
            raise UnknownRoom("no open room has this id; check the link, or the room has ended")
        remote = await self._remote.watch(
            found,
            message.room,
            viewer=self._ws,
            forwarded_for=self._address,
            on_end=lambda dropped: self._remote_ended(remote, dropped),
        )
        self._watched = remote

    async def unwatch(self) -> None:
        """Stop watching (idempotent); the connection may run its own programs again."""
        watched, self._watched = self._watched, None
        if isinstance(watched, RemoteWatch):
            await watched.close()
        elif watched is not None:
            room, viewer = watched
            room.unwatch(viewer)

    def _remote_ended(self, remote: RemoteWatch, dropped: str | None) -> None:
        """The relayed room closed, its replica went away, or this viewer was dropped."""
        if self._watched is remote:  # not a watch this connection already left
            self.room_left(dropped)

    # -- the room's callbacks (Presenter and Watcher) ------------------------

    async def send(self, message: ServerMessage) -> None:
        await send_message(self._ws, message)

    def room_lost(self) -> None:
        self._room = None

    def room_left(self, dropped: str | None) -> None:
        self._watched = None
        if dropped is not None and self._closing is None:
            self._closing = asyncio.create_task(self._close_overloaded(dropped))

    # -- end -----------------------------------------------------------------

    async def aclose(self) -> None:
        """The connection ended: its room waits for it (`resume_s`), its watch ends."""
        await self.unwatch()
        await self._leave_room()
        if self._closing is not None:
            await asyncio.wait([self._closing], timeout=_DROP_CLOSE_S)

    async def _leave_room(self) -> None:
        if self._room is not None:
            room, self._room = self._room, None
            if self._settings.sharing.resume_s > 0:
                room.presenter_left(self)
            else:
                await room.close("presenter_left")

    def _presenting(self) -> Room:
        if self._room is None:
            raise UnknownRoom("this connection presents no room; send share first")
        return self._room

    def _shared(self, room: Room) -> Shared:
        expires = datetime.fromtimestamp(room.expires_at, UTC).isoformat(timespec="seconds")
        return Shared(
            room=room.room_id,
            key=room.key,
            watch_url=f"{self._watch_base}/watch/{room.room_id}",
            expires_at=expires.replace("+00:00", "Z"),
        )

    async def _close_overloaded(self, why: str) -> None:
        """A dropped viewer: close 1013; a socket that takes no close frame is cut."""
        log.info("closing a viewer 1013: %s", why)
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(_DROP_CLOSE_S):
                await self._ws.close(
                    code=CloseCode.TRY_AGAIN_LATER, message=b"fell behind the room; watch again"
                )
