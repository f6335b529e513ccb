"""The rooms of this server: opened within their limits, found by id, taken back by key.

With a `RoomDirectory` (replicas sharing a Redis), each room opened here is
announced, and a room id unknown here may name a room on another replica:
`where` then answers with that replica's URL.
"""

from __future__ import annotations

import asyncio
import secrets

from ce_ws.config import SharingSettings
from ce_ws.errors import Busy, RateLimited, UnknownRoom
from ce_ws.rooms.directory import RoomDirectory
from ce_ws.rooms.room import Presenter, Room, RoomState
from ce_ws.secret import same_secret

#: Random bytes in a room's public id (128 bits, as the contract asks) and in its key.
ROOM_ID_BYTES = 16
ROOM_KEY_BYTES = 32


class RoomRegistry:
    """Every open (or waiting) room, by its public id."""

    def __init__(self, settings: SharingSettings, directory: RoomDirectory | None = None) -> None:
        self._settings = settings
        self._directory = directory
        self._rooms: dict[str, Room] = {}
        self._closing = False

    def __len__(self) -> int:
        return len(self._rooms)

    async def open(self, *, client_key: str, presenter: Presenter) -> Room:
        """A new room for `presenter`; raises `Busy` or `RateLimited` beyond the limits."""
        self._check_room_for(client_key)
        room_id = secrets.token_urlsafe(ROOM_ID_BYTES)
        if self._directory is not None:
            # Announced before the room exists: cancelled here, nothing is left holding a place.
            await self._directory.announce(room_id)
            self._check_room_for(client_key)  # others may have opened rooms meanwhile
        room = Room(
            room_id=room_id,
            key=secrets.token_urlsafe(ROOM_KEY_BYTES),
            client_key=client_key,
            settings=self._settings,
            presenter=presenter,
            on_closed=self._forget,
        )
        self._rooms[room.room_id] = room
        return room

    def _check_room_for(self, client_key: str) -> None:
        if self._closing:
            raise Busy("the server is shutting down; try again later")
        if len(self._rooms) >= self._settings.max_rooms:
            raise Busy(f"the server has its {self._settings.max_rooms} rooms open; try again later")
        held = sum(1 for room in self._rooms.values() if room.client_key == client_key)
        if held >= self._settings.rooms_per_client:
            raise RateLimited(f"this client already holds {held} rooms; close one (unshare) first")

    def find(self, room_id: str) -> Room:
        """The open room with this id; raises `UnknownRoom`."""
        room = self._rooms.get(room_id)
        if room is None or room.state is RoomState.CLOSED:
            raise UnknownRoom("no open room has this id; check the link, or the room has ended")
        return room

    async def where(self, room_id: str) -> Room | str:
        """The open room with this id, or the URL of the replica holding it; raises `UnknownRoom`."""
        try:
            return self.find(room_id)
        except UnknownRoom:
            elsewhere = await self._elsewhere(room_id)
            if elsewhere is None:
                raise
            return elsewhere

    async def take_back(self, room_id: str, key: str, presenter: Presenter) -> Room:
        """The room whose `key` this is, now presented by `presenter`; raises `UnknownRoom`."""
        room = self._rooms.get(room_id)
        if room is None and await self._elsewhere(room_id) is not None:
            # Its runs and viewers are on that replica; a presenter cannot move them here.
            raise UnknownRoom(
                "this room is held by another replica of the server, which this connection"
                " did not reach; share a new room"
            )
        # A wrong key reads as no room: the id alone (which viewers know) proves nothing.
        if room is None or not same_secret(room.key, key):
            raise UnknownRoom("no room to take back with this id and key; share a new one")
        room.take_back(presenter)
        return room

    async def aclose(self) -> None:
        """At shutdown: every room closes (`server_shutdown`); no new one opens."""
        self._closing = True
        await asyncio.gather(
            *(room.close("server_shutdown") for room in list(self._rooms.values()))
        )
        if self._directory is not None:
            await self._directory.aclose()

    async def _elsewhere(self, room_id: str) -> str | None:
        """The URL of another replica the directory says holds this room."""
        if self._directory is None:
            return None
        found = await self._directory.locate(room_id)
        return found if found != self._directory.replica_url else None  # ours: it ended

    def _forget(self, room: Room) -> None:
        self._rooms.pop(room.room_id, None)
        if self._directory is not None:
            self._directory.withdraw(room.room_id)
