"""One server message to a WebSocket, as its JSON text frame (dropped once the socket closes).

A free function over the socket rather than a `Connection` method handed
around: a bound method kept by the connection's own parts (its `Sharing`)
would tie the connection into a reference cycle, and every connection's
socket, request and run would then outlive it until the garbage
collector's next full pass (the soak's RSS grew with the runs).
"""

from __future__ import annotations

from aiohttp import web

from ce_ws.protocol import ServerMessage


async def send_message(ws: web.WebSocketResponse, message: ServerMessage) -> None:
    """Send `message` unless the socket is closed or closing."""
    if not ws.closed:
        await ws.send_str(message.to_json())
