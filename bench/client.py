"""A WebSocket client of the wire contract, as a browser would use it.

Each `Session` is one connection whose frames are read by a background task
the moment they arrive (so heartbeats are answered and arrival times are
exact); the benchmark awaits what it needs from the queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

DEFAULT_TIMEOUT_S = 60.0
LONG_LIMITS = {"wall_ms": 600_000, "idle_ms": 600_000}


class BenchError(Exception):
    """The server answered something a benchmark did not expect."""


@contextlib.asynccontextmanager
async def http_client() -> AsyncIterator[aiohttp.ClientSession]:
    """One client for many sockets (no connection cap)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        yield http


class Session:
    """One connection: send runs and keys, await messages and output."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, *, keep_output: bool) -> None:
        self.ws = ws
        self.keep_output = keep_output
        self.output_bytes = 0
        self.first_output_at: float | None = None
        self.last_output_at: float | None = None
        self._output: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._messages: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls, http: aiohttp.ClientSession, url: str, *, keep_output: bool = True
    ) -> Session:
        """Connect and read `hello`."""
        ws = await http.ws_connect(url, max_msg_size=0, autoping=True)
        session = cls(ws, keep_output=keep_output)
        await session.expect("hello")
        return session

    async def close(self) -> None:
        """Close the socket (the server ends any active run) and stop reading."""
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        async for frame in self.ws:
            now = time.perf_counter()
            if frame.type is aiohttp.WSMsgType.BINARY:
                self._count(now, frame.data)
            elif frame.type is aiohttp.WSMsgType.TEXT:
                self._messages.put_nowait((now, json.loads(frame.data)))
        self._messages.put_nowait((time.perf_counter(), {"type": "closed"}))

    def _count(self, now: float, data: bytes) -> None:
        if self.first_output_at is None:
            self.first_output_at = now
        self.last_output_at = now
        self.output_bytes += len(data)
        if self.keep_output:
            self._output.put_nowait((now, data))

    def reset_output(self) -> None:
        """Forget output timing and counts before the next run."""
        self.output_bytes = 0
        self.first_output_at = self.last_output_at = None
        while not self._output.empty():
            self._output.get_nowait()

    async def run(self, language: str, code: str, **fields: Any) -> float:
        """Send `run`; returns the moment it was sent."""
        self.reset_output()
        message = {"type": "run", "language": language, "code": code, **fields}
        sent_at = time.perf_counter()
        await self.ws.send_str(json.dumps(message))
        return sent_at

    async def keys(self, data: bytes) -> float:
        """Keystrokes as one binary frame; returns the moment they were sent."""
        sent_at = time.perf_counter()
        await self.ws.send_bytes(data)
        return sent_at

    async def next_message(self, *, within_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The next control message whatever its type (`{"type": "closed"}` once the socket is)."""
        async with asyncio.timeout(within_s):
            _, message = await self._messages.get()
            return message

    async def expect(self, kind: str, *, within_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The message `kind` (skipping `stage`/`queued`); anything else is an error."""
        _, message = await self.expect_timed(kind, within_s=within_s)
        return message

    async def expect_timed(
        self, kind: str, *, within_s: float = DEFAULT_TIMEOUT_S
    ) -> tuple[float, dict[str, Any]]:
        """Like `expect`, with the moment the message arrived."""
        async with asyncio.timeout(within_s):
            while True:
                arrived, message = await self._messages.get()
                if message["type"] == kind:
                    return arrived, message
                # `viewers`: a presenter's room count, which changes whenever it likes.
                if message["type"] not in {"stage", "queued", "started", "pong", "viewers"}:
                    raise BenchError(f"expected {kind}, got {message}")

    async def next_output(self, *, within_s: float = DEFAULT_TIMEOUT_S) -> tuple[float, bytes]:
        """The next output frame and when it arrived."""
        async with asyncio.timeout(within_s):
            return await self._output.get()

    async def output_until(self, needle: bytes, *, within_s: float = DEFAULT_TIMEOUT_S) -> float:
        """Read output until `needle` has appeared; returns when it arrived."""
        seen = b""
        async with asyncio.timeout(within_s):
            while needle not in seen:
                arrived, data = await self._output.get()
                seen = seen[-len(needle) :] + data
        return arrived
