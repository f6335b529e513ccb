"""`GET /api/v1/ws`: the checks before the upgrade, then one `Connection` until close."""

from __future__ import annotations

from aiohttp import hdrs, web

from ce_ws.api.appkeys import (
    CLIENT_CONNECTIONS,
    CONNECTIONS,
    IDENTITY,
    LANGUAGES,
    RECORDINGS,
    REMOTE_ROOMS,
    ROOMS,
    RUNNER,
    SETTINGS,
)
from ce_ws.api.auth import authorized, bearer_token
from ce_ws.api.client_sockets import client_socket
from ce_ws.api.connection import Connection
from ce_ws.api.guards import require_own_origin
from ce_ws.api.peers import FORWARDED_HEADER
from ce_ws.errors import RateLimited
from ce_ws.origins import public_base_url
from ce_ws.protocol import SUBPROTOCOL, CloseCode, ErrorMessage
from ce_ws.runs.runner import Client


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Origin check, upgrade, connection caps, then serve until the socket closes."""
    app = request.app
    settings = app[SETTINGS]
    require_own_origin(request)
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        max_msg_size=settings.max_message_bytes,
        heartbeat=settings.heartbeat_s,
        # No permessage-deflate: terminal frames are small, and deflating each
        # one costs zlib CPU per frame per socket, which a room pays once per
        # viewer for every frame its presenter's program writes.
        compress=False,
    )
    await ws.prepare(request)
    if len(app[CONNECTIONS]) >= settings.capacity.max_connections:
        await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"server overloaded")
        return ws
    bearer = bearer_token(request)
    client = Client(
        key=request.app[IDENTITY].client_key(request),
        via="ws",
        credentials=(bearer,) if bearer else (),
    )
    # A viewer relayed by another replica was counted there (see remote_watch.py).
    relayed = FORWARDED_HEADER in request.headers and app[IDENTITY].from_trusted_proxy(request)
    async with client_socket(app, client.key, counted=not relayed) as admitted:
        if not admitted:
            await _refuse_connection(ws, app[CLIENT_CONNECTIONS].per_client)
        else:
            await _serve(request, ws, client)
    return ws


async def _serve(request: web.Request, ws: web.WebSocketResponse, client: Client) -> None:
    """One `Connection` until the socket closes."""
    app = request.app
    settings = app[SETTINGS]
    connection = Connection(
        ws,
        client=client,
        authorized=authorized(settings.tokens, *client.credentials),
        settings=settings,
        languages=app[LANGUAGES],
        runner=app[RUNNER],
        rooms=app[ROOMS],
        recordings=app[RECORDINGS],
        base_url=public_base_url(settings.public_url, host_header=request.headers.get(hdrs.HOST)),
        remote_rooms=app.get(REMOTE_ROOMS),
        address=app[IDENTITY].address(request),
    )
    app[CONNECTIONS].add(connection)
    try:
        await connection.serve()
    finally:
        app[CONNECTIONS].discard(connection)


async def _refuse_connection(ws: web.WebSocketResponse, per_client: int) -> None:
    """Over the per-client connection cap: say why, then close with 1008."""
    refusal = ErrorMessage(
        code=RateLimited.code, message=f"more than {per_client} connections from this client"
    )
    await ws.send_str(refusal.to_json())
    await ws.close(code=CloseCode.POLICY, message=b"too many connections from this client")
