"""What is refused before a handler reads anything: foreign pages, too many requests.

A browser lets any page send a request to any address, the user's own
machine included; these checks refuse what only such a page would send.
The Host check guards every route (a middleware); the Origin and
Content-Type checks guard the routes that run code, before anything is read.
The policy itself is `ce_ws.origins`. The per-address cap on open HTTP
requests is a middleware too: a slow body holds a file descriptor.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ce_ws.api.appkeys import HTTP_REQUESTS, IDENTITY, ORIGINS
from ce_ws.api.http_errors import error_shape
from ce_ws.errors import HostNotAllowed, OriginNotAllowed, RateLimited, UnsupportedMediaType
from ce_ws.origins import local_port

JSON = "application/json"
#: The name of the WebSocket's route, and the start of every other WebSocket
#: route's name (a compatibility surface's): their connections are capped apart.
WEBSOCKET_ROUTE = "websocket"


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a Host naming none of the server's names: DNS rebinding, whatever the route."""
    host = request.headers.get(hdrs.HOST)
    if not request.app[ORIGINS].host_allowed(host):
        raise HostNotAllowed(
            f"this server does not answer to the host {host!r:.80}; see CE_ALLOWED_HOSTS"
        )
    return await handler(request)


def own_or_allowed_origin(request: web.Request) -> bool:
    """Not a browser, or one on a page of the server's own origin or an allowed one.

    The server's own port is the one this connection reached, read from the
    socket: the Host header is the client's to choose.
    """
    transport = request.transport
    port = local_port(transport.get_extra_info("sockname") if transport else None)
    return request.app[ORIGINS].origin_allowed(request.headers.get(hdrs.ORIGIN), port)


def require_own_origin(request: web.Request) -> None:
    """A browser must come from the server's own origin or an allowed one."""
    if not own_or_allowed_origin(request):
        raise OriginNotAllowed(
            "a page of another origin may not use this server; see CE_ALLOWED_ORIGINS"
        )


def require_json(request: web.Request) -> None:
    """A JSON body must say so: a page elsewhere can send text/plain or a form without asking."""
    if request.content_type != JSON:
        raise UnsupportedMediaType(f"send the body as Content-Type: {JSON}")


@web.middleware
async def limit_http_per_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Cap the HTTP requests one address has open; the extra is refused before its body.

    A request holds a connection (a file descriptor) while its body trickles
    in; WebSockets are capped apart, for their whole life.
    """
    name = request.match_info.route.name
    if name is not None and name.startswith(WEBSOCKET_ROUTE):
        return await handler(request)
    client_key = request.app[IDENTITY].client_key(request)
    open_requests = request.app[HTTP_REQUESTS]
    if not open_requests.has_room(client_key):
        refusal = RateLimited(
            f"more than {open_requests.per_client} open requests from this client"
        )
        return await _answer_and_close(request, error_shape(request)(refusal))
    with open_requests.hold(client_key):
        return await handler(request)


async def _answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send `response`, then drop the connection at once.

    aiohttp would otherwise go on reading (and ignoring) an unread body for
    up to its lingering time: a refusal must not keep the connection it refuses.
    """
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response
