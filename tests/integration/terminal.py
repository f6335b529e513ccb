"""A small WebSocket client for tests: run, expect output, send keys, await exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

DEFAULT_TIMEOUT_S = 30.0


class TermClient:
    """Reads every frame into `output` (bytes) and `messages` (control JSON)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.output = bytearray()
        self.messages: list[dict[str, Any]] = []
        self.output_times: list[tuple[float, bytes]] = []
        self.hello: dict[str, Any] = {}

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls, client: TestClient[Any, Any], **kwargs: Any
    ) -> AsyncIterator[TermClient]:
        async with client.ws_connect("/api/v1/ws", **kwargs) as ws:
            term = cls(ws)
            term.hello = await term.next_message("hello")
            yield term

    @classmethod
    @contextlib.asynccontextmanager
    async def connect_url(cls, url: str, **kwargs: Any) -> AsyncIterator[TermClient]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, **kwargs) as ws:
            term = cls(ws)
            term.hello = await term.next_message("hello")
            yield term

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def keys(self, data: bytes | str) -> None:
        """Keystrokes as a binary frame."""
        await self.ws.send_bytes(data.encode() if isinstance(data, str) else data)

    async def run(self, language: str, code: str | None = None, **fields: Any) -> dict[str, Any]:
        """Send `run` and return `started` (or the `error`/`exit` that came instead)."""
        if code is not None:
            fields["code"] = code
        await self.send(type="run", language=language, **fields)
        return await self.next_message("started", "error", "exit")

    async def _read_frame(self, deadline: float) -> None:
        frame = await self.ws.receive(timeout=max(deadline - time.monotonic(), 0.001))
        if frame.type is aiohttp.WSMsgType.BINARY:
            self.output += frame.data
            self.output_times.append((time.time(), frame.data))
        elif frame.type is aiohttp.WSMsgType.TEXT:
            self.messages.append(json.loads(frame.data))
        else:
            raise ConnectionError(f"socket ended: {frame.type} {frame.data!r} {frame.extra!r}")

    async def next_message(self, *types: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The next control message of one of these types (others are kept)."""
        deadline = time.monotonic() + timeout
        seen = len(self.messages)
        while True:
            for message in self.messages[seen:]:
                seen += 1
                if message["type"] in types:
                    return message
            await self._read_frame(deadline)

    async def expect(self, needle: bytes, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        """Read until `needle` appears in the output."""
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            try:
                await self._read_frame(deadline)
            except TimeoutError:
                raise AssertionError(f"{needle!r} not in output {bytes(self.output)!r}") from None

    async def drain(self, seconds: float) -> None:
        """Read whatever arrives for `seconds`.

        Bounded from outside: aiohttp's `receive` starts its timeout afresh
        after each ping it answers, so a long drain would outlast `seconds`.
        """
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    await self._read_frame(deadline)

    async def wait_exit(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        return await self.next_message("exit", timeout=timeout)

    async def run_to_exit(
        self, language: str, code: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Run a program without input and return its `exit`."""
        started = await self.run(language, code, **fields)
        assert started["type"] == "started", started
        return await self.wait_exit()

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def types(self) -> list[str]:
        return [message["type"] for message in self.messages]
