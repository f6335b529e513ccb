"""Judge0 submissions in Redis (`CE_REDIS_URL`): a token made on one replica answers on any.

Each submission is one JSON value that expires with `CE_JUDGE0__MAX_AGE_S`;
a sorted set by creation time bounds their number (`MAX_SUBMISSIONS`, the
oldest go first). The tokens a server has not finished are in a set of its
own id, so its shutdown, or its next start after a crash, ends exactly its
own as Internal Error and never another replica's. When Redis does not
answer, a request is refused `busy` with what to do; a result that could not
be kept is logged, as the SQLite store does with a disk error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as redis
from redis.exceptions import RedisError

from ce_ws.api.compat.judge0_mapping import Judge0Result, Judge0Status
from ce_ws.api.compat.judge0_store import INTERRUPTED, Judge0Submission
from ce_ws.config import Judge0Settings
from ce_ws.errors import Busy
from ce_ws.shared_redis import redis_client

T = TypeVar("T")

_PREFIX = "ce:judge0"
_BY_AGE = f"{_PREFIX}:by-age"
#: How long one Redis call may take before the request is refused.
_TIMEOUT_S = 2.0


def _key(token: str) -> str:
    return f"{_PREFIX}:submission:{token}"


class RedisJudge0Store:
    """The submissions of every replica sharing one Redis; this server's unfinished apart."""

    def __init__(self, settings: Judge0Settings, *, url: str, server_id: str) -> None:
        self._settings = settings
        self._unfinished = f"{_PREFIX}:unfinished:{server_id}"
        self._redis: redis.Redis = redis_client(url, timeout_s=_TIMEOUT_S, text=True)
        #: Whether what this server id left unfinished before (a crash) was ended.
        self._leftovers_ended = False
        self._leftovers = asyncio.Lock()

    async def start(self) -> None:
        """End what a crash of this server id left unfinished (raises `Busy` without Redis)."""
        await self._call(self._end_leftovers_once)

    async def put(self, submission: Judge0Submission) -> None:
        """Keep a submission (replacing its earlier state), then let retention forget the oldest."""
        await self._call(lambda: self._put(submission))

    async def get_many(self, tokens: list[str]) -> dict[str, Judge0Submission]:
        """The kept submissions among `tokens`, by token."""
        records = await self._call(lambda: self._redis.mget([_key(token) for token in tokens]))
        found = (Judge0Submission.model_validate_json(r) for r in records if r is not None)
        return {submission.token: submission for submission in found}

    async def end_unfinished(self) -> None:
        """This server's submissions that did not end are Internal Error (at shutdown, or after a crash)."""
        await self._call(self._end_unfinished)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            await self._end_leftovers_once()
            return await work()
        except (RedisError, OSError) as exc:
            raise Busy(
                f"the submissions store (Redis) does not answer ({exc.__class__.__name__}); "
                "try again in a moment"
            ) from exc

    async def _end_leftovers_once(self) -> None:
        """Before anything this run of the server adds: what an earlier run left ends."""
        async with self._leftovers:
            if not self._leftovers_ended:
                await self._end_unfinished()
                self._leftovers_ended = True

    async def _put(self, submission: Judge0Submission) -> None:
        created = submission.created_at.timestamp()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(_key(submission.token), submission.model_dump_json(),
                     ex=max(1, int(self._settings.max_age_s)))  # fmt: skip
            pipe.zadd(_BY_AGE, {submission.token: created})
            if submission.status.ended:
                pipe.srem(self._unfinished, submission.token)
            else:
                pipe.sadd(self._unfinished, submission.token)
            pipe.zremrangebyscore(_BY_AGE, "-inf", time.time() - self._settings.max_age_s)
            await pipe.execute()
        await self._forget_beyond_count()

    async def _forget_beyond_count(self) -> None:
        extra = await self._redis.zcard(_BY_AGE) - self._settings.max_submissions
        if extra > 0:
            oldest = await self._redis.zpopmin(_BY_AGE, extra)
            await self._redis.delete(*(_key(str(entry[0])) for entry in oldest))

    async def _end_unfinished(self) -> None:
        tokens = sorted(str(token) for token in await self._redis.smembers(self._unfinished))
        if not tokens:
            return
        kept = await self._redis.mget([_key(token) for token in tokens])
        result = Judge0Result(Judge0Status.INTERNAL_ERROR, message=INTERRUPTED)
        for token, record in zip(tokens, kept, strict=True):
            if record is None:  # expired or forgotten meanwhile
                await self._redis.srem(self._unfinished, token)
            else:
                await self._put(Judge0Submission.model_validate_json(record).ended_with(result))
