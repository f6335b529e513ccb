"""The operational endpoints and the read-only API: health, readiness, metrics, docs."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from pydantic import TypeAdapter

from ce_ws.api.appkeys import LANGUAGES, METRICS, RUNNER, SANDBOX, SETTINGS
from ce_ws.api.http import json_response
from ce_ws.metrics import CONTENT_TYPE
from ce_ws.openapi import openapi_document
from ce_ws.protocol import EngineReadiness, Health, LanguageInfo, Readiness
from ce_ws.sandbox.base import EngineState, not_ready_because

_languages_adapter = TypeAdapter(list[LanguageInfo])


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: the process is alive."""
    return json_response(Health())


def engine_readiness(states: list[EngineState]) -> list[EngineReadiness]:
    """The engines as the wire shows them."""
    return [
        EngineReadiness(
            name=state.name,
            condition=state.condition,
            reason=state.reason,
            runs=state.runs,
            capacity=state.capacity,
            pool_idle=state.pool_idle,
        )
        for state in states
    ]


async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`: 200 when a run would start now, else 503 with the reason."""
    app = request.app
    admission = app[RUNNER].admission
    engines = await app[SANDBOX].engine_states()
    reason = not_ready_because(engines)
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
        engines=engine_readiness(engines),
    )
    return json_response(body, HTTPStatus.OK if reason is None else HTTPStatus.SERVICE_UNAVAILABLE)


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text format."""
    metrics = request.app[METRICS]
    metrics.engines(await request.app[SANDBOX].engine_states())
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})


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
