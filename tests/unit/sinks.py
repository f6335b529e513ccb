"""A recording fake of a run's subscriber, for the fan-out's and the rooms' unit tests."""

from __future__ import annotations

import asyncio

from ce_ws.protocol import ServerMessage
from ce_ws.runs.fanout import Delivery
from ce_ws.types import StreamId


class Sink:
    """Records what it got; `gate` cleared makes its reader stall (every send waits)."""

    def __init__(self) -> None:
        self.output = bytearray()
        self.messages: list[ServerMessage] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send(self, message: ServerMessage) -> None:
        await self.gate.wait()
        self.messages.append(message)

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        await self.gate.wait()
        self.output += data

    def send_now(self, message: ServerMessage) -> bool:
        # Like a socket whose transport is paused, a closed gate makes the viewer await.
        if self.gate.is_set():
            self.messages.append(message)
        return self.gate.is_set()

    def send_output_now(self, data: bytes, stream: StreamId) -> bool:
        if self.gate.is_set():
            self.output += data
        return self.gate.is_set()

    def delivery(self) -> Delivery:
        # What it holds is taken; a send waiting at the gate is the viewer's to see.
        return Delivery(waiting=False, taken=len(self.output) + len(self.messages))
