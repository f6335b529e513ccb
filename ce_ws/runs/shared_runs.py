"""Live runs and sockets across replicas, in the Redis they share (`CE_REDIS_URL`).

Two things every replica must agree on:

- **each client's runs and sockets at once** (`CE_CAPACITY__MAX_RUNS_PER_CLIENT`,
  `CE_CAPACITY__MAX_CONNECTIONS_PER_CLIENT`), one cap however many replicas
  the client reaches: a sorted set per client and kind,
  `ce:client-runs:<client key>` and `ce:client-sockets:<client key>`, whose
  members are runs (sockets) and whose scores are when each one's lease ends;
- **where each run lives**, `ce:run:<run id>` → its replica's URL, so an
  admin request that reaches another replica is forwarded to the owner.

Each replica renews its runs' leases every `RENEW_S`; a replica that dies
stops renewing, and its runs stop counting after `LEASE_S` (their
containers are its restart's to reap). While Redis does not answer, each
replica counts alone (its own `Admission` still caps the client) and
asks Redis again at most every `_RETRY_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Literal

import redis.asyncio as redis
from redis.exceptions import RedisError

from ce_ws.shared_redis import redis_client

log = logging.getLogger(__name__)

#: How long a run counts without its replica renewing it.
LEASE_S = 10.0
RENEW_S = 2.0
_RETRY_S = 5.0
#: What a client holds at once, each kind under its own cap.
Kind = Literal["runs", "sockets"]
_RUN = "ce:run:"
#: KEYS[1] the client's runs; ARGV[1] this run, ARGV[2] the cap, ARGV[3] the lease.
#: Drops the runs whose lease ended, then adds this one if the cap allows: 1, else 0.
#: Asked twice for the same run (a retry), it answers 1 again.
_HOLD = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1])
   and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3])) + 1)
return 1
"""
#: KEYS[1] the client's runs; ARGV[1] this run, ARGV[2] the lease: a held run's lease goes on
#: (and comes back if it lapsed while Redis was away: the run still holds its place).
_RENEW = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""


class SharedRuns:
    """This replica's view of the cluster's live runs (see the module's docstring)."""

    def __init__(
        self, *, url: str, replica_url: str, live_run_ids: Callable[[], list[str]]
    ) -> None:
        """`live_run_ids` lists this replica's runs now (their ids as clients know them)."""
        self.replica_url = replica_url
        self._live_run_ids = live_run_ids
        self._redis: redis.Redis = redis_client(url)
        self._hold = self._redis.register_script(_HOLD)
        self._renew = self._redis.register_script(_RENEW)
        #: Runs and sockets holding a place in their client's cap: token → its set's key.
        self._held: dict[str, str] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._away_until = 0.0
        self._closed = False

    async def hold(self, kind: Kind, client: str, token: str, cap: int) -> bool:
        """Count a new run (socket) against its client's cap: False when the cap is full.

        True also while Redis is away: the replica's own cap then holds alone.
        """
        self._start_renewing()
        if time.monotonic() < self._away_until:
            return True
        key = f"ce:client-{kind}:{client}"
        try:
            held = await self._hold(keys=[key], args=[token, cap, LEASE_S])
        except (RedisError, OSError) as exc:
            self._away(exc)
            return True
        self._back()
        if held:
            self._held[token] = key
        return bool(held)

    def release(self, token: str) -> None:
        """It is over: its place in the cap is free (in the background, never waited on)."""
        key = self._held.pop(token, None)
        if key is not None and not self._closed:
            self._in_background(self._redis.zrem(key, token))

    async def locate(self, run_id: str) -> str | None:
        """The URL of the replica holding this run, or None (unknown, or Redis away)."""
        try:
            found = await self._redis.get(_RUN + run_id)
        except (RedisError, OSError) as exc:
            self._away(exc)
            return None
        self._back()
        return found.decode() if isinstance(found, bytes) else None

    async def aclose(self) -> None:
        """Let go of every place still held, then of Redis; after it, `release` does nothing."""
        if self._closed:
            return
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        for token in list(self._held):
            self.release(token)
        self._closed = True
        if self._background:
            await asyncio.wait(self._background, timeout=1.0)
        await self._redis.aclose()

    def _start_renewing(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever())

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self._renew_once()
            except (RedisError, OSError) as exc:
                self._away(exc)

    async def _renew_once(self) -> None:
        """Every held run's lease goes on, and every live run says where it lives."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for token, key in self._held.items():
                await self._renew(keys=[key], args=[token, LEASE_S], client=pipe)
            for run_id in self._live_run_ids():
                pipe.set(_RUN + run_id, self.replica_url, ex=math.ceil(LEASE_S))
            if not len(pipe):
                return  # nothing asked of Redis: nothing learnt of it either
            await pipe.execute()
        self._back()

    def _away(self, exc: Exception) -> None:
        if not self._away_until:
            log.warning("Redis does not answer (%s): each replica caps its clients alone", exc)
        self._away_until = time.monotonic() + _RETRY_S

    def _back(self) -> None:
        if self._away_until:
            log.warning("Redis answers again: runs counted across replicas")
            self._away_until = 0.0

    def _in_background(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            with contextlib.suppress(RedisError, OSError):
                await work

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
