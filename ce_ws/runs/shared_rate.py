"""The runs-a-minute limit counted across replicas, in Redis (`CE_REDIS_URL`).

One token bucket per client, as `RateLimiter` keeps in memory, but kept in
Redis and updated by one script (atomic, on Redis's own clock), so a client
has one budget however many replicas its runs reach. The client's key is the
same on every replica: a signed cookie (the replicas share
`CE_COOKIE_SECRET`) or its address.

When Redis does not answer, each replica counts alone (`RateLimiter`)
until it answers again, asking it at most every few seconds so no run waits
on a Redis that is away: the limit then holds per replica, never not at all,
and runs go on. That is logged once per outage.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from ce_ws.config import Settings
from ce_ws.runs.admission import RateLimiter
from ce_ws.shared_redis import redis_client

log = logging.getLogger(__name__)

#: While Redis is away, how often a check asks it again.
_RETRY_S = 5.0
#: KEYS[1] the client's bucket; ARGV[1] tokens a second, ARGV[2] the burst.
#: Returns 1 when a token was taken.
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1e6
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local kept = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(kept[1]) or burst
local stamp = tonumber(kept[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local taken = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return taken
"""


class RunRateLimit(Protocol):
    """The limit on how many runs a client may start a minute."""

    async def check(self, client: str) -> None:
        """Take one token for a new run, or raise `RateLimited`."""

    async def aclose(self) -> None:
        """Let go of what it holds (a Redis connection)."""


class LocalRunRateLimit:
    """This server's own count (one node, or no Redis)."""

    def __init__(self, per_minute: int) -> None:
        self._limiter = RateLimiter(per_minute)

    async def check(self, client: str) -> None:
        self._limiter.check(client)

    async def aclose(self) -> None:
        return None


class SharedRunRateLimit:
    """One bucket per client in Redis for every replica; this replica's own while Redis is away."""

    def __init__(self, per_minute: int, *, url: str) -> None:
        self._per_minute = per_minute
        self._local = RateLimiter(per_minute)
        self._redis: redis.Redis = redis_client(url)
        self._take = self._redis.register_script(_TAKE)
        self._alone = False
        self._retry_at = 0.0

    async def check(self, client: str) -> None:
        if self._alone and time.monotonic() < self._retry_at:
            self._local.check(client)
            return
        try:
            taken = await self._take(keys=[f"ce:runs-a-minute:{client}"],
                                     args=[self._per_minute / 60, self._per_minute])  # fmt: skip
        except (RedisError, OSError) as exc:
            if not self._alone:
                log.warning("Redis does not answer (%s): runs a minute counted per replica", exc)
                self._alone = True
            self._retry_at = time.monotonic() + _RETRY_S
            self._local.check(client)
            return
        if self._alone:
            log.warning("Redis answers again: runs a minute counted across replicas")
            self._alone = False
        if not taken:
            raise self._local.refusal()

    async def aclose(self) -> None:
        await self._redis.aclose()


def run_rate_limit(settings: Settings) -> RunRateLimit:
    """Across replicas when they share a Redis, else this server's own."""
    per_minute = settings.capacity.runs_per_minute
    if settings.redis_url is None:
        return LocalRunRateLimit(per_minute)
    return SharedRunRateLimit(per_minute, url=settings.redis_url)
