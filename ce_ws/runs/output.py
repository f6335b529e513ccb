"""The output path of one run: one cap for compile and run output, and the flow window.

Every byte the compiler or the program writes passes `OutputMeter.forward`,
so the cap is exact to the byte on every surface, and `exit.output_bytes` is
what subscribers were given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ce_ws.types import StreamId

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024

Publish = Callable[[bytes, StreamId], Awaitable[None]]


class OutputMeter:
    """Counts output against the cap and holds the program while the client is behind."""

    def __init__(self, publish: Publish, *, cap: int, flow_control: bool) -> None:
        self._publish = publish
        self._cap = cap
        self._flow_control = flow_control
        self._unacked = 0
        self._window = asyncio.Event()
        self._window.set()
        #: Bytes given to subscribers so far (compile and run stages together).
        self.sent = 0
        #: Whether output was cut at the cap.
        self.truncated = False

    async def forward(self, data: bytes, stream: StreamId) -> bool:
        """Publish what fits under the cap; False once the cap is reached."""
        room = max(self._cap - self.sent, 0)
        if len(data) > room:
            data, self.truncated = data[:room], True
        if data:
            self.sent += len(data)
            if self._flow_control:
                self._unacked += len(data)
                if self._unacked >= HIGH_WATER:
                    self._window.clear()
            await self._publish(data, stream)
            await self._window.wait()
        return not self.truncated

    def ack(self, count: int) -> None:
        """Flow control: the client consumed `count` more bytes."""
        self._unacked = max(0, self._unacked - count)
        if self._unacked <= LOW_WATER:
            self._window.set()
