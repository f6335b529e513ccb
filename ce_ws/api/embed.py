"""The embed widget's files, `/embed.js` and its chunks under `/embed/`, for pages elsewhere.

A `<script type="module">` of another origin is a CORS request: the browser
runs the answer only if its `Access-Control-Allow-Origin` names the page's
origin. So, by the page's origin (the server's own, `CE_ALLOWED_ORIGINS`, or
no `Origin` at all: not a browser, or a page of the server itself):

- `/embed.js` to an allowed origin: the widget, with the CORS header for it.
  To any other origin: `refused.js`, a small module that shows each snippet's
  code and says why it cannot run, with the CORS header too (a browser drops a
  module without it, and the page would fail silently). It holds nothing of
  the widget, and the WebSocket refuses such a page anyway.
- `/embed/{chunk}` (the terminal, the editor, its language modes): only to an
  allowed origin; any other gets 403 `origin_not_allowed` and no CORS header.
- `OPTIONS` on either: 204 with the CORS headers, or 403 `origin_not_allowed`.

Every answer varies by `Origin`. The files are the build's
(`scripts/build-assets.sh`); a gzipped copy beside each is sent to browsers
that accept gzip (aiohttp's `FileResponse` picks it).
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import hdrs, web

from ce_ws.api.guards import own_or_allowed_origin, require_own_origin
from ce_ws.api.pages import STATIC_DIR
from ce_ws.errors import OriginNotAllowed

WIDGET_DIR = STATIC_DIR / "dist" / "widget"
ENTRY_PATH = "/embed.js"
CHUNKS_PATH = "/embed"
#: What the build writes in `embed/`: hashed chunks, their source maps and licences.
_CHUNK_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}\.js(?:\.map|\.LEGAL\.txt)?")
_ALLOW_METHODS = "GET, HEAD, OPTIONS"
#: The entry's name never changes but its content does (each build, each origin's
#: answer): browsers ask again each time. Chunk names carry a hash of their content.
_ENTRY_CACHE = "no-cache"
_CHUNK_CACHE = "public, max-age=31536000, immutable"
_NOT_BUILT = "the embed widget is not built: run `bash scripts/build-assets.sh`"


def _cors(request: web.Request) -> dict[str, str]:
    """The CORS header naming the page's origin, when a browser sent one.

    Called once the origin may have the answer (each handler decides).
    """
    origin = request.headers.get(hdrs.ORIGIN)
    return {} if origin is None else {hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin}


def _is_widget_path(path: str) -> bool:
    return path == ENTRY_PATH or path.startswith(f"{CHUNKS_PATH}/")


async def vary_by_origin(request: web.Request, response: web.StreamResponse) -> None:
    """Every widget answer, refusals too, depends on the page's origin: caches must know.

    Added as the answer starts: `FileResponse` sets its own `Vary` while preparing.
    """
    if _is_widget_path(request.path):
        already = response.headers.get(hdrs.VARY)
        response.headers[hdrs.VARY] = f"{already}, {hdrs.ORIGIN}" if already else hdrs.ORIGIN


def _file(path: Path, headers: dict[str, str]) -> web.FileResponse:
    if not path.is_file():
        raise web.HTTPNotFound(text=_NOT_BUILT, headers=headers)
    return web.FileResponse(path, headers=headers)


async def entry(request: web.Request) -> web.FileResponse:
    """`GET /embed.js`: the widget to an allowed page, the refusal module to any other."""
    allowed = own_or_allowed_origin(request)
    name = "embed.js" if allowed else "refused.js"
    # Both answers run in the page: the refusal is a module to run, so it gets CORS too.
    headers = {**_cors(request), hdrs.CACHE_CONTROL: _ENTRY_CACHE}
    return _file(WIDGET_DIR / name, headers)


async def chunk(request: web.Request) -> web.FileResponse:
    """`GET /embed/{name}`: a lazily loaded part of the widget, for an allowed page only."""
    require_own_origin(request)
    name = request.match_info["name"]
    headers = {**_cors(request), hdrs.CACHE_CONTROL: _CHUNK_CACHE}
    if not _CHUNK_NAME.fullmatch(name):
        raise web.HTTPNotFound(text=f"no widget file {name[:100]!r}", headers=headers)
    return _file(WIDGET_DIR / "embed" / name, headers)


async def preflight(request: web.Request) -> web.Response:
    """`OPTIONS`: whether a page may fetch the widget's files (a plain `GET` needs no preflight)."""
    if not own_or_allowed_origin(request):
        raise OriginNotAllowed(
            "a page of this origin may not use this server's widget; see CE_ALLOWED_ORIGINS"
        )
    headers = _cors(request)
    headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = _ALLOW_METHODS
    return web.Response(status=204, headers=headers)


def add_routes(app: web.Application) -> None:
    """Register the widget's routes and its `Vary` in `create_app`."""
    app.on_response_prepare.append(vary_by_origin)
    router = app.router
    router.add_get(ENTRY_PATH, entry)
    router.add_route(hdrs.METH_OPTIONS, ENTRY_PATH, preflight)
    router.add_get(f"{CHUNKS_PATH}/{{name}}", chunk)
    router.add_route(hdrs.METH_OPTIONS, f"{CHUNKS_PATH}/{{name}}", preflight)
