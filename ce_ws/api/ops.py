"""The operational endpoints and the read-only API: health, readiness, metrics, docs."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

from aiohttp import web
from pydantic import TypeAdapter

from ce_ws.api.appkeys import IDENTITY, LANGUAGES, METRICS, RUNNER, SANDBOX, SETTINGS
from ce_ws.api.http import json_response
from ce_ws.metrics import CONTENT_TYPE
from ce_ws.openapi import docs_page, openapi_document
from ce_ws.protocol import Health, LanguageInfo, Readiness

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
_languages_adapter = TypeAdapter(list[LanguageInfo])


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: the process is alive."""
    return json_response(Health())


async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`: 200 when a run would start now, else 503 with the reason."""
    app = request.app
    admission = app[RUNNER].admission
    reason = await app[SANDBOX].not_ready_because()
    if reason is None and not admission.has_room():
        reason = "every run slot is taken"
    pool = app[SANDBOX].pool_figures()
    body = Readiness(
        ready=reason is None,
        reason=reason,
        active_runs=admission.active,
        queued_runs=admission.queued,
        max_runs=app[SETTINGS].capacity.max_runs,
        pool_idle=pool.idle if pool else None,
        pool_hits=pool.hits if pool else None,
        pool_misses=pool.misses if pool else None,
    )
    return json_response(body, HTTPStatus.OK if reason is None else HTTPStatus.SERVICE_UNAVAILABLE)


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def languages(request: web.Request) -> web.Response:
    """`GET /api/v1/languages`."""
    entries = [
        LanguageInfo(
            name=language.name,
            version=language.version,
            aliases=list(language.aliases),
            compiled=language.compiled,
            entry_file=language.entry_file,
        )
        for language in request.app[LANGUAGES]
    ]
    return web.Response(body=_languages_adapter.dump_json(entries), content_type="application/json")


async def openapi(request: web.Request) -> web.Response:
    """`GET /api/v1/openapi.json`."""
    return web.json_response(openapi_document())


async def docs(request: web.Request) -> web.Response:
    """`GET /docs`: the OpenAPI document as a page."""
    return web.Response(text=docs_page(), content_type="text/html")


async def index(request: web.Request) -> web.FileResponse:
    """The playground page; a browser without one gets its identity cookie here."""
    response = web.FileResponse(STATIC_DIR / "index.html")
    request.app[IDENTITY].issue_cookie(request, response)
    return response
