"""The browser rules: which requests a page on another site could have sent.

A browser lets any page send a request to any address, the user's own
machine included; these checks refuse what only such a page would send.
The Host check guards every route (a middleware); the Origin and
Content-Type checks guard the routes that run code, before anything is read.
The policy itself is `ce_ws.origins`.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ce_ws.api.appkeys import ORIGINS
from ce_ws.errors import HostNotAllowed, OriginNotAllowed, UnsupportedMediaType
from ce_ws.origins import local_port

JSON = "application/json"


@web.middleware
async def host_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a Host naming none of the server's names: DNS rebinding, whatever the route."""
    host = request.headers.get(hdrs.HOST)
    if not request.app[ORIGINS].host_allowed(host):
        raise HostNotAllowed(
            f"this server does not answer to the host {host!r:.80}; see CE_ALLOWED_HOSTS"
        )
    return await handler(request)


def require_own_origin(request: web.Request) -> None:
    """A browser must come from the server's own origin or an allowed one.

    The server's own port is the one this connection reached, read from the
    socket: the Host header is the client's to choose.
    """
    transport = request.transport
    port = local_port(transport.get_extra_info("sockname") if transport else None)
    if not request.app[ORIGINS].origin_allowed(request.headers.get(hdrs.ORIGIN), port):
        raise OriginNotAllowed(
            "a page of another origin may not use this server; see CE_ALLOWED_ORIGINS"
        )


def require_json(request: web.Request) -> None:
    """A JSON body must say so: a page elsewhere can send text/plain or a form without asking."""
    if request.content_type != JSON:
        raise UnsupportedMediaType(f"send the body as Content-Type: {JSON}")
