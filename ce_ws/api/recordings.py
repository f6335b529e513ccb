"""`GET /api/v1/recordings/{id}.cast`: a finished recording, and the store's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import hdrs, web

from ce_ws.api.appkeys import RECORDINGS, SETTINGS

ASCIICAST_TYPE = "application/x-asciicast"
#: How often expired recordings are looked for, at most.
_SWEEP_S = 60.0


async def recording(request: web.Request) -> web.StreamResponse:
    """One recording by its exact name; anything else is 404."""
    path = request.app[RECORDINGS].find(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound(text="no such recording (it may have expired)")
    return web.FileResponse(
        path,
        headers={hdrs.CONTENT_TYPE: ASCIICAST_TYPE, hdrs.CACHE_CONTROL: "private, max-age=3600"},
    )


async def recordings_store(app: web.Application) -> AsyncIterator[None]:
    """Open the recordings folder; sweep expired recordings while the server runs."""
    store = app[RECORDINGS]
    store.open()
    every_s = min(_SWEEP_S, app[SETTINGS].recordings.max_age_s / 2)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(every_s)
            store.prune()

    sweeper = asyncio.create_task(sweep())
    yield
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
