"""Frames written straight to a socket's transport reach a real aiohttp client intact."""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType, web

from ce_ws.api.direct_frames import writable_transport, write_frame
from tests.helpers import eventually

#: One frame per header form: 7-bit, 16-bit and 64-bit lengths.
FRAMES: list[str | bytes] = ["short text", b"\x00" * 125, b"m" * 126, b"x" * 65_535, b"y" * 70_000]


async def test_frames_of_every_length_form_arrive_in_order(aiohttp_client: Any) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = writable_transport(ws)
        assert transport is not None
        for frame in FRAMES:
            write_frame(transport, frame)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/", max_msg_size=0)
    got = [message async for message in ws]
    assert [m.type for m in got] == [
        WSMsgType.TEXT if isinstance(f, str) else WSMsgType.BINARY for f in FRAMES
    ]
    assert [m.data for m in got] == FRAMES


async def test_a_compressed_or_closed_socket_is_never_written_directly(
    aiohttp_client: Any,
) -> None:
    seen: list[bool] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # aiohttp's default: permessage-deflate if offered
        await ws.prepare(request)
        seen.append(writable_transport(ws) is None)
        await ws.close()
        seen.append(writable_transport(ws) is None)
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/", compress=15)  # as browsers do
    async for _ in ws:
        pass
    await eventually(lambda: len(seen) == 2)
    assert seen == [True, True]
