"""The HTML pages: the playground, a room's watch page, a recording's replay, /docs.

Each page is a static file whose script reads what it shows (the room, the
recording) from its own path. Before serving it, the server checks that the
id in the path is well formed and names an open room or a kept recording,
and answers a 404 page saying which it is not; the id names no file here
(the recordings store checks its own names). Each page carries its own
Content-Security-Policy, set on the response so it wins over the default one
every response gets.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path
from typing import Final

from aiohttp import web

from ce_ws.api.appkeys import IDENTITY, RECORDINGS, ROOMS
from ce_ws.errors import UnknownRoom
from ce_ws.recordings.store import SUFFIX

STATIC_DIR: Final = Path(__file__).resolve().parents[2] / "static"

#: What a room or recording id looks like (URL-safe base64 of ≥ 128 random
#: bits; the upper bound only keeps absurd paths out). Checked before a page
#: is served, so a mistyped or forged link gets a clear answer at once.
PUBLIC_ID: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")

#: The playground, the watch page and the replay page: their own scripts and
#: styles (xterm and CodeMirror inject style attributes), their own origin's
#: WebSocket, data: images (the QR code is drawn on a canvas, the icon is
#: data:), no framing. WebAssembly may be compiled, never script evaluated:
#: xterm's image addon decodes inline images' base64 with its own bundled
#: module, and asciinema-player inlines its terminal emulator as one.
PAGE_CSP: Final = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: /docs (Swagger UI) needs no WebAssembly.
DOCS_CSP: Final = PAGE_CSP.replace(" 'wasm-unsafe-eval'", "")

_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <title>{title} · Code Executor</title>
  <link rel="icon" href="data:,">
  <style>
    body {{ font: 1rem/1.5 system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem; }}
  </style>
</head>
<body>
  <h1>{title}</h1>
  <p>{advice}</p>
  <p><a href="/">Open the playground</a></p>
</body>
</html>
"""


def _page(name: str, policy: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers={"Content-Security-Policy": policy})


def _not_found(title: str, advice: str) -> web.Response:
    return web.Response(
        status=HTTPStatus.NOT_FOUND,
        text=_NOT_FOUND_PAGE.format(title=title, advice=advice),
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


async def playground(request: web.Request) -> web.FileResponse:
    """`GET /`: the playground; a browser without one gets its identity cookie here."""
    response = _page("index.html", PAGE_CSP)
    request.app[IDENTITY].issue_cookie(request, response)
    return response


async def watch(request: web.Request) -> web.StreamResponse:
    """`GET /watch/{room}`: follow an open room (the page then follows it to its end)."""
    room = request.match_info["room"]
    if not PUBLIC_ID.fullmatch(room):
        return _not_found(
            "This watch link is not valid",
            "The room id in the link is incomplete or mistyped. Copy the whole link again, "
            "or scan the presenter's QR code.",
        )
    try:
        await request.app[ROOMS].where(room)
    except UnknownRoom:
        return _not_found(
            "This room has ended",
            "No room is open at this link: the presenter stopped presenting, or the room "
            "closed. Ask the presenter for a new link.",
        )
    return _page("watch.html", PAGE_CSP)


async def replay(request: web.Request) -> web.StreamResponse:
    """`GET /replay/{recording}`: play a kept recording."""
    recording = request.match_info["recording"]
    if not PUBLIC_ID.fullmatch(recording):
        return _not_found(
            "This replay link is not valid",
            "The recording id in the link is incomplete or mistyped. Copy the whole link again.",
        )
    if request.app[RECORDINGS].find(f"{recording}{SUFFIX}") is None:
        return _not_found(
            "This recording is not kept any more",
            "Old recordings are removed after a while, or to make room for new ones. "
            "Ask the presenter to run the program again.",
        )
    return _page("replay.html", PAGE_CSP)


async def docs(request: web.Request) -> web.FileResponse:
    """`GET /docs`: the OpenAPI document in Swagger UI (from npm, in static/dist/docs)."""
    return web.FileResponse(STATIC_DIR / "docs.html", headers={"Content-Security-Policy": DOCS_CSP})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/", playground)
    router.add_get("/docs", docs)
    router.add_get("/watch/{room}", watch)
    router.add_get("/replay/{recording}", replay)
    router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
