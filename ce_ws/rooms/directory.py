"""Which replica holds each room, in the Redis the replicas share (`CE_REDIS_URL`).

A room lives on the replica holding its presenter's connection. That replica
announces it here (`ce:room:<room id>` → its own URL, expiring with the room's
longest life) and withdraws it when it closes, so a viewer who reaches
another replica is relayed to the right one. Only the public room id goes to
Redis, never the room's key.

Redis away: a room is not announced (its viewers must reach its own replica)
and a room elsewhere is not found (`unknown_room`, saying so). Nothing waits
on Redis longer than `FAST_S` (ce_ws/shared_redis.py).
"""

from __future__ import annotations

import asyncio
import logging
import math

import redis.asyncio as redis
from redis.exceptions import RedisError

from ce_ws.shared_redis import redis_client

log = logging.getLogger(__name__)

_PREFIX = "ce:room:"
#: How long shutdown waits for the last withdrawals.
_WITHDRAW_GRACE_S = 1.0


class RoomDirectory:
    """Room id → the URL of the replica holding the room."""

    def __init__(self, *, url: str, replica_url: str, max_room_s: float) -> None:
        self.replica_url = replica_url
        self._ttl_s = math.ceil(max_room_s)
        self._redis: redis.Redis = redis_client(url)
        self._withdrawals: set[asyncio.Task[None]] = set()

    async def announce(self, room_id: str) -> None:
        """This replica holds the room (until it closes, or its life is over)."""
        try:
            await self._redis.set(_PREFIX + room_id, self.replica_url, ex=self._ttl_s)
        except (RedisError, OSError) as exc:
            log.warning("room %s not announced (Redis: %s): viewers must reach this replica",
                        room_id, exc)  # fmt: skip

    def withdraw(self, room_id: str) -> None:
        """The room closed: forget it (in the background; a room's close never waits on Redis)."""
        task = asyncio.create_task(self._withdraw(room_id))
        self._withdrawals.add(task)
        task.add_done_callback(self._withdrawals.discard)

    async def locate(self, room_id: str) -> str | None:
        """The URL of the replica holding the room, or None (unknown, or Redis away)."""
        try:
            found = await self._redis.get(_PREFIX + room_id)
        except (RedisError, OSError) as exc:
            log.warning("room %s not looked up (Redis: %s)", room_id, exc)
            return None
        return found.decode() if isinstance(found, bytes) else None

    async def aclose(self) -> None:
        if self._withdrawals:
            await asyncio.wait(self._withdrawals, timeout=_WITHDRAW_GRACE_S)
        await self._redis.aclose()

    async def _withdraw(self, room_id: str) -> None:
        try:
            # Only while it names this replica (GET then DEL: a stale entry is harmless).
            key = _PREFIX + room_id
            if await self._redis.get(key) == self.replica_url.encode():
                await self._redis.delete(key)
        except (RedisError, OSError) as exc:
            log.warning("room %s not withdrawn (Redis: %s); it expires by itself", room_id, exc)
