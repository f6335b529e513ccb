"""A WebSocket client that truly reads nothing: a tiny receive buffer, never drained.

An aiohttp client buffers what arrives by itself; this one does the
handshake by hand, sends its messages, and reads again only when asked for
the close code the server sent it (after everything it had been sent).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from typing import Any

_RECEIVE_BUFFER = 4096
_CLOSE = 0x8


class StalledSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, port: int) -> StalledSocket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=_RECEIVE_BUFFER)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, **message: Any) -> None:
        """One masked text frame (short: under 126 bytes of JSON)."""
        payload = json.dumps(message).encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self._writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    async def close_code(self, timeout_s: float) -> int | None:
        """Read every frame the server sent; the code of its close frame, if one came."""
        with contextlib.suppress(TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            async with asyncio.timeout(timeout_s):
                while True:
                    opcode, payload = await self._frame()
                    if opcode == _CLOSE:
                        return int(struct.unpack("!H", payload[:2])[0])
        return None

    async def _frame(self) -> tuple[int, bytes]:
        first, second = await self._reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        return first & 0x0F, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()
