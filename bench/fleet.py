"""Many idle interactive sessions at once, and keystroke probes through them.

Each session is a WebSocket running `ECHO_PYTHON` (raw terminal, echoes what
it reads). A probe sends one byte on one session and times its return; probes
go one at a time, round-robin over every session, like one person typing
while everyone else sits idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bench.client import LONG_LIMITS, BenchError, Session
from bench.programs import ECHO_PYTHON
from bench.progress import Ticker

READY = b"ready>"
_OPEN_CONCURRENCY = 8
_PROBE_TIMEOUT_S = 10.0
_PROBE_GAP_S = 0.005
_KEY = b"k"
_CLOSE_BATCH = 20


@dataclass
class GrowResult:
    """How growing the fleet went."""

    opened: int
    failures: list[str]
    seconds: float


class Fleet:
    """A set of sessions, each with the echo program waiting for keys."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http = http
        self._url = url
        self.sessions: list[Session] = []

    def __len__(self) -> int:
        return len(self.sessions)

    async def _open_one(self) -> Session:
        session = await Session.open(self._http, self._url)
        try:
            await session.run("python", ECHO_PYTHON, limits=LONG_LIMITS)
            await session.expect("started")
            await session.output_until(READY)
        except BaseException:
            await session.close()
            raise
        return session

    async def grow(self, size: int) -> GrowResult:
        """Open sessions until there are `size`; at most a few start at once."""
        began = time.monotonic()
        wanted = size - len(self.sessions)
        ticker = Ticker(f"opening sessions to {size}", wanted)
        gate = asyncio.Semaphore(_OPEN_CONCURRENCY)
        failures: list[str] = []

        async def one() -> None:
            async with gate:
                try:
                    self.sessions.append(await self._open_one())
                except (BenchError, TimeoutError, aiohttp.ClientError, OSError) as exc:
                    failures.append(repr(exc))
                ticker.tick()

        await asyncio.gather(*(one() for _ in range(wanted)))
        return GrowResult(wanted - len(failures), failures, time.monotonic() - began)

    async def probe(self, count: int) -> list[float]:
        """`count` keystroke round trips (seconds), round-robin over the sessions."""
        samples = []
        for index in range(count):
            session = self.sessions[index % len(self.sessions)]
            samples.append(await self._round_trip(session))
            await asyncio.sleep(_PROBE_GAP_S)
        return samples

    @staticmethod
    async def _round_trip(session: Session) -> float:
        sent_at = await session.keys(_KEY)
        arrived_at = await session.output_until(_KEY, within_s=_PROBE_TIMEOUT_S)
        return arrived_at - sent_at

    async def close(self, settled: Callable[[int], Awaitable[None]]) -> None:
        """Close every socket, a batch at a time; the server removes the containers.

        `settled(n)` waits until the server holds `n` sessions' containers: all at
        once, the removals queue up in dockerd past the server's control timeout.
        """
        while self.sessions:
            batch, self.sessions = self.sessions[:_CLOSE_BATCH], self.sessions[_CLOSE_BATCH:]
            with contextlib.suppress(Exception):
                await asyncio.gather(*(session.close() for session in batch))
            await settled(len(self.sessions))
