"""The one way this server makes a client of the Redis the replicas share (`CE_REDIS_URL`).

Every user of Redis (Judge0 submissions, runs a minute, live runs, rooms)
gets its own small pool from here, with the same rules: nothing connects
until the first command; no command waits longer than its timeout; and a
connection Redis closed (it restarted) is replaced at once, so the first
command after a restart does not fail for nothing.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

#: How long a command may wait where a run or a viewer waits on it.
FAST_S = 0.5


def redis_client(url: str, *, timeout_s: float = FAST_S, text: bool = False) -> redis.Redis:
    """A client of `url`; `text` decodes replies to `str`."""
    return redis.Redis.from_url(
        url,
        decode_responses=text,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        # One retry on a connection error only: a stale pooled connection (a refused
        # connect on a Redis that is down fails as fast the second time). Never on a
        # timeout: the command may have run, and a wait would double.
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
