"""Every HTTP refusal in the contract's shape `{"error": {"code", "message"}}`.

(A compatibility surface answers in its own client's shape instead: the
`ErrorShape` it registers for its path prefix in `ERROR_SHAPES`.)

One middleware, outermost: a `CeError` raised outside a handler's own
refusals (the Host and Origin guards), aiohttp's own refusals (no route,
wrong method, not an upgrade), and what a client's bytes can make the
framework raise (a body that is not the gzip it claims, a static name too
long for the filesystem) become 4xx bodies and one INFO line. Only a bug is
a 500, whose traceback goes to the log and never to the client.
"""

from __future__ import annotations

import errno
import logging
from http import HTTPStatus

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from ce_ws.api.appkeys import ERROR_SHAPES
from ce_ws.api.http import ErrorShape, error_response, json_response
from ce_ws.errors import BadMessage, CeError
from ce_ws.protocol import ErrorBody, ErrorDetail

log = logging.getLogger(__name__)


@web.middleware
async def client_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with an error body.

    A client's mistake is a 4xx and one INFO line, never a traceback: the log
    must not grow by kilobytes per bad request. A bug is a 500 `internal`.
    """
    shape = error_shape(request)
    try:
        return await handler(request)
    except CeError as exc:
        return _refused(request, exc, shape(exc))
    except web.HTTPException as exc:  # no route, wrong method, not an upgrade...
        if exc.status < HTTPStatus.BAD_REQUEST:
            raise  # not an error: a redirect or "not modified"
        return _refused(request, exc, shape(exc))
    except web.RequestPayloadError as exc:  # e.g. a body that is not the gzip it claims
        # Left as it is, aiohttp would drain the broken body after the answer
        # and log its error with a traceback: the body is over, and so is the
        # connection (what follows on it cannot be trusted to be a request).
        request.content.feed_eof()
        response = shape(BadMessage("the request body could not be decoded"))
        response.force_close()
        return _refused(request, exc, response)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
        # A static path longer than the filesystem allows names no file.
        return _refused(request, exc, shape(web.HTTPNotFound()))
    except Exception:
        if request.writer.output_size:  # already answering (a WebSocket): nothing to add
            raise
        log.exception("internal error on %s %.200r", request.method, request.path)
        return shape(CeError("internal error; the server logged it"))


def error_shape(request: web.Request) -> ErrorShape:
    """How refusals are answered on this request's path: its surface's shape, or the native one."""
    for prefix, shape in request.app[ERROR_SHAPES].items():
        if request.path == prefix or request.path.startswith(f"{prefix}/"):
            return shape
    return native_shape


def native_shape(exc: CeError | web.HTTPException) -> web.Response:
    """The contract's `{"error": {"code", "message"}}`, for every surface but the compatible ones."""
    return error_response(exc) if isinstance(exc, CeError) else _http_error_response(exc)


def _refused(request: web.Request, exc: Exception, response: web.Response) -> web.Response:
    log.info(
        "refused %s %.200r: %d %.200r", request.method, request.path, response.status, str(exc)
    )
    return response


def _http_error_response(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal as an error body; its code is the reason, e.g. `not_found`."""
    code = exc.reason.lower().replace(" ", "_")
    body = ErrorBody(error=ErrorDetail(code=code, message=exc.text or exc.reason))
    response = json_response(body, exc.status)
    for name, value in http_exception_headers(exc):
        response.headers.add(name, value)
    return response


def http_exception_headers(exc: web.HTTPException) -> list[tuple[str, str]]:
    """What aiohttp's refusal says in its headers (e.g. `Allow` of a 405), its body's aside."""
    body_headers = {hdrs.CONTENT_TYPE.lower(), hdrs.CONTENT_LENGTH.lower()}
    return [
        (name, value) for name, value in exc.headers.items() if name.lower() not in body_headers
    ]
