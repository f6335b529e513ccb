"""What every HTTP surface shares: JSON bodies, the error shape, status codes, headers."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from aiohttp import web

from ce_ws.errors import (
    BadMessage,
    BodyTimeout,
    BodyTooLarge,
    Busy,
    CeError,
    CodeTooLarge,
    HostNotAllowed,
    LimitExceeded,
    OriginNotAllowed,
    RateLimited,
    Unauthorized,
    UnknownEngine,
    UnknownLanguage,
    UnknownRun,
    UnsupportedMediaType,
)
from ce_ws.protocol import ErrorBody, ErrorDetail, ServerMessage

#: Seconds a client is asked to wait after a 429 or a 503.
RETRY_AFTER_S = 5
_HTTP_STATUS: dict[type[CeError], HTTPStatus] = {
    BodyTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    BodyTimeout: HTTPStatus.REQUEST_TIMEOUT,
    BadMessage: HTTPStatus.BAD_REQUEST,
    UnknownLanguage: HTTPStatus.BAD_REQUEST,
    UnknownEngine: HTTPStatus.NOT_FOUND,
    UnknownRun: HTTPStatus.NOT_FOUND,
    CodeTooLarge: HTTPStatus.BAD_REQUEST,
    LimitExceeded: HTTPStatus.BAD_REQUEST,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    HostNotAllowed: HTTPStatus.FORBIDDEN,
    OriginNotAllowed: HTTPStatus.FORBIDDEN,
    UnsupportedMediaType: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    Busy: HTTPStatus.SERVICE_UNAVAILABLE,
    CeError: HTTPStatus.INTERNAL_SERVER_ERROR,
}
_WAIT_AGAIN = {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE}

#: How a surface answers a refusal: a `CeError`, or one of aiohttp's own (no
#: route, wrong method). The native one is `http_errors.native_shape`; a
#: compatibility surface has its own, for its path prefix (`ERROR_SHAPES`).
ErrorShape = Callable[[CeError | web.HTTPException], web.Response]

#: Sent with every HTTP response: the page loads only its own files, talks only
#: to its own origin, and cannot be framed (xterm and CodeMirror inject styles).
#: WebAssembly may be compiled (not JavaScript evaluated): xterm's image addon
#: decodes inline images' base64 with its own bundled module.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def http_status(error: CeError) -> HTTPStatus:
    """The HTTP status of a refusal: its class's, or its nearest parent's."""
    return next(_HTTP_STATUS[cls] for cls in type(error).__mro__ if cls in _HTTP_STATUS)


def json_response(body: ServerMessage, status: int = HTTPStatus.OK) -> web.Response:
    """A model as a JSON response (optional fields left out when unset)."""
    return web.Response(text=body.to_json(), status=status, content_type="application/json")


def error_response(error: CeError) -> web.Response:
    """A refusal as `{error: {code, message, field?}}` with its status."""
    status = http_status(error)
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message, field=error.field))
    response = json_response(body, status)
    response.headers.update(refusal_headers(status))
    return response


def refusal_headers(status: HTTPStatus) -> dict[str, str]:
    """What a refusal with `status` says besides its body: when to retry, how to authenticate."""
    headers = {}
    if status in _WAIT_AGAIN:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if status is HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = "Bearer"
    return headers


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Harden every response the browser sees."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
