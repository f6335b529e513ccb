"""`ce watch ROOM_URL`: follow a live room read-only (protocol.md section 3).

`watch` → `watching`, then a replay (binary frames that redraw the current
terminal) and the live output, straight to our stdout. Nothing we type is
sent: a viewer is read-only. Ctrl-C leaves; `room_closed` ends it with 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any

import aiohttp
from yarl import URL

from ce_ws.cli.connect import open_socket
from ce_ws.cli.outcome import EX_UNAVAILABLE, Ending, lost_ending, run_ending
from ce_ws.cli.output import OutputSink
from ce_ws.cli.terminal import keys_unechoed, window_size
from ce_ws.protocol import Exit

EX_LEFT = 130  # 128 + SIGINT: the viewer left with Ctrl-C


class RoomViewer:
    """Shows one room on our terminal until it closes or we leave."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, room: str) -> None:
        self._ws = ws
        self._room = room
        self._output = OutputSink(tty=True)
        self._watching = False
        self._left = False
        self._closing: asyncio.Task[None] | None = None

    async def follow(self) -> Ending:
        """Send `watch` and show the room until its end."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._leave)
        try:
            await self._ws.send_str(json.dumps({"type": "watch", "room": self._room}))
            async for frame in self._ws:
                if frame.type is aiohttp.WSMsgType.BINARY:
                    self._output.write(frame.data)
                elif frame.type is aiohttp.WSMsgType.TEXT:
                    ending = self._on_message(json.loads(frame.data))
                    if ending is not None:
                        return ending
        finally:
            loop.remove_signal_handler(signal.SIGINT)
        return (
            Ending(EX_LEFT)
            if self._left
            else lost_ending("the server closed the room's connection")
        )

    def _leave(self) -> None:
        self._left = True
        if self._closing is None:
            self._closing = asyncio.create_task(self._close())

    async def _close(self) -> None:
        await self._ws.close()

    def _on_message(self, message: dict[str, Any]) -> Ending | None:
        match message.get("type"):
            case "watching" if not self._watching:  # again on a resync: say it once
                self._watching = True
                self._notice(f"watching room {self._room}; Ctrl-C leaves")
                if message.get("run"):
                    self._notice("a run is live: its screen so far follows")
                self._on_resize(message)
            case "started":
                self._notice(f"the presenter started a {message.get('language', '')} run")
            case "exit":
                with contextlib.suppress(ValueError):
                    ending = run_ending(Exit.model_validate(message))
                    self._notice(f"the run ended: {ending.why or f'exit status {ending.code}'}")
            case "resize":
                self._on_resize(message)
            case "presenter":
                online = message.get("online")
                self._notice(
                    "the presenter is back" if online else "the presenter dropped; the room waits"
                )
            case "room_closed":
                return Ending(
                    0, f"the room was closed ({message.get('reason', 'by the presenter')})"
                )
            case "error" if not self._watching:
                return Ending(
                    EX_UNAVAILABLE, f"cannot watch {self._room}: {message.get('message')}"
                )
            case "error":
                self._notice(f"the server said: {message.get('message')}")
        return None

    def _on_resize(self, message: dict[str, Any]) -> None:
        """The presenter's terminal size (`watching`, `resize`): say so when ours is smaller."""
        cols, rows = window_size(1)
        theirs = (message.get("cols", 0), message.get("rows", 0))
        if theirs[0] > cols or theirs[1] > rows:
            self._notice(
                f"the presenter's terminal is {theirs[0]}x{theirs[1]}; ours is {cols}x{rows}"
            )

    def _notice(self, text: str) -> None:
        # The room's bytes are a terminal's, so is the line that follows them.
        self._output.notice(text, crlf=True)


async def watch_room(server: URL, room: str, token: str | None) -> Ending:
    """Follow `room` on `server` read-only until it closes or we leave."""
    async with open_socket(server, token) as ws:
        with keys_unechoed(0):  # what we type would only garble the presenter's screen
            return await RoomViewer(ws, room).follow()
