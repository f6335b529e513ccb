"""A WebSocket frame written straight to a socket's transport, when that is safe.

A room hands the same frames to each of its viewers' sockets; awaiting
aiohttp's `send_bytes` for each costs a coroutine (and, behind a busy loop, a
wake-up) per viewer per frame. For a socket without compression (the server
offers none, see `ws.py`), aiohttp's own send of a data frame is exactly
this: a header, the payload, one `transport.write`, no lock and no await
unless the transport is paused. So it may be done synchronously, as long as
the transport is not paused (then the caller awaits the ordinary send, which
waits for the drain) and the socket is not closing.
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import WSMsgType, web

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
#: FIN set: every frame is a whole message.
_FINAL = 0x80


def writable_transport(ws: web.WebSocketResponse) -> asyncio.Transport | None:
    """The socket's transport if a frame may be written to it now; None: await a send."""
    # aiohttp keeps its frame writer private; what is read of it here is the
    # state its own `send_frame` looks at before writing an uncompressed frame.
    writer = ws._writer
    if writer is None or ws.closed or writer.compress or writer.protocol.writing_paused:
        return None
    transport = writer.transport
    return None if transport.is_closing() else transport


def write_frame(transport: asyncio.Transport, frame: str | bytes) -> None:
    """One unmasked (server's) frame: text for a `str`, binary for `bytes`."""
    if isinstance(frame, str):
        payload, opcode = frame.encode(), WSMsgType.TEXT
    else:
        payload, opcode = frame, WSMsgType.BINARY
    first, size = _FINAL | opcode, len(payload)
    if size < 126:
        header = _SHORT.pack(first, size)
    elif size < 65536:
        header = _MEDIUM.pack(first, 126, size)
    else:
        header = _LONG.pack(first, 127, size)
    transport.write(header + payload)
