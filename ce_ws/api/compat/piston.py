"""Piston v2 under `/piston` (contract §5; docs/compat/piston.md): a thin adapter over the Runner.

`GET /piston/api/v2/runtimes`, `POST /piston/api/v2/execute`, the
`/piston/api/v2/connect` WebSocket (`piston_ws`) and this surface's OpenAPI
document. A body is read as JSON whatever its Content-Type (piston-client
sends none); the Origin check still refuses pages of other origins. Every
refusal is Piston's `{"message": ...}`, with the status our error has.
"""

from __future__ import annotations

import functools
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ce_ws import __version__
from ce_ws.api.appkeys import LANGUAGES, REFUSALS, RUNNER, SETTINGS
from ce_ws.api.auth import parse_authorized
from ce_ws.api.batch import answer_batch, read_body, run_to_end
from ce_ws.api.compat.piston_result import PistonError, PistonResult, piston_error, piston_result
from ce_ws.api.compat.piston_wire import (
    PistonJob,
    PistonRuntime,
    find_language,
    parse_job,
    piston_languages,
    run_request,
)
from ce_ws.api.compat.piston_ws import connect
from ce_ws.api.guards import WEBSOCKET_ROUTE, require_own_origin
from ce_ws.errors import CeError
from ce_ws.runs.runner import Client

PREFIX = "/piston"
API = f"{PREFIX}/api/v2"


async def runtimes(request: web.Request) -> web.Response:
    """`GET /piston/api/v2/runtimes`: our languages under Piston's names, with our versions."""
    entries = [entry.runtime.to_data() for entry in piston_languages(request.app[LANGUAGES])]
    return web.json_response(entries)


async def execute(request: web.Request) -> web.StreamResponse:
    """`POST /piston/api/v2/execute`: run a job to its end; a refusal is `{"message"}`."""
    return await answer_batch(request, via="piston", handle=_execute, refuse=piston_error)


async def _execute(request: web.Request, client: Client) -> tuple[HTTPStatus, dict[str, Any]]:
    """Check, parse and run one job; raises the `CeError` that refuses it."""
    app = request.app
    runner, settings = app[RUNNER], app[SETTINGS]
    try:
        require_own_origin(request)  # before the body is read: a page elsewhere gets nothing run
        app[REFUSALS].check_left(client.key)
        body = await read_body(request, settings)
        job = parse_authorized(request, body, settings.tokens, parse_job)
        language = find_language(app[LANGUAGES], job.language, job.version)
        asked = run_request(job, language.language, settings, stdin=True)
    except CeError as exc:
        runner.refused(client, exc)
        raise
    result = piston_result(await run_to_end(request, asked, client), language)
    return HTTPStatus.OK, result.to_data()


async def root(request: web.Request) -> web.Response:
    """`GET /piston/`: who answers, as Piston's root does."""
    return web.json_response({"message": f"Piston v2 API (Code Executor {__version__})"})


async def not_found(request: web.Request) -> web.Response:
    """Any other path or method under `/piston`: Express's 404."""
    return web.json_response({"message": "Not Found"}, status=404)


async def openapi(request: web.Request) -> web.Response:
    """`GET /piston/openapi.json`."""
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    """Mount the Piston surface; paths with a trailing slash answer too, as Express's do."""
    router = app.router
    for path, suffix in (("", ""), ("/", "-slash")):
        router.add_get(f"{API}/runtimes{path}", runtimes)
        router.add_post(f"{API}/execute{path}", execute)
        # Named as a WebSocket: capped as one, not as an open HTTP request.
        router.add_get(f"{API}/connect{path}", connect, name=f"{WEBSOCKET_ROUTE}-piston{suffix}")
        router.add_get(f"{PREFIX}{path}", root)
    router.add_get(f"{PREFIX}/openapi.json", openapi)
    router.add_route("*", f"{PREFIX}/{{tail:.*}}", not_found)


# -- the OpenAPI document, generated from the wire models ---------------------

_REF = "#/components/schemas/{model}"
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (PistonJob, "validation"),
    (PistonResult, "serialization"),
    (PistonRuntime, "serialization"),
    (PistonError, "serialization"),
]


def _body(model: type[BaseModel] | None, description: str, *, array: bool = False) -> Any:
    schema: dict[str, Any] = {"$ref": _REF.format(model=(model or PistonError).__name__)}
    if array:
        schema = {"type": "array", "items": schema}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _refusals() -> dict[str, Any]:
    refusals = {
        "400": "Invalid job: a field of the wrong type, an unknown runtime, a limit above ours.",
        "401": "Tokens are configured and none valid was given.",
        "403": "Host or Origin not the server's own nor allowed.",
        "404": "No such path under /piston.",
        "408": "The body did not arrive within the body deadline.",
        "413": "The body is over the size cap.",
        "429": "Too many runs, refused or open requests from this client.",
        "503": "No run slot came free in time.",
    }
    return {status: _body(None, text) for status, text in refusals.items()}


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The Piston surface's document; built once, on the first request for it."""
    _, schemas = models_json_schema(_MODELS, ref_template=_REF)
    execute_operation = {
        "summary": "Run a job to its end (Piston v2 `POST /api/v2/execute`)",
        "description": "The body is read as JSON whatever its Content-Type.",
        "operationId": "pistonExecute",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="PistonJob")}}},
        },
        "responses": {"200": _body(PistonResult, "The job ended (whatever its status)."), **_refusals()},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Code Executor: Piston v2 compatibility",
            "version": __version__,
            "description": "Piston v2's API under /piston; see docs/compat/piston.md. "
            "The interactive WebSocket is GET /piston/api/v2/connect.",
        },
        "paths": {
            f"{API}/runtimes": {"get": {
                "summary": "Our languages under Piston's names",
                "operationId": "pistonRuntimes",
                "responses": {"200": _body(PistonRuntime, "Every runtime.", array=True)},
            }},
            f"{API}/execute": {"post": execute_operation},
            PREFIX: {"get": {
                "summary": "Who answers, as Piston's root does",
                "operationId": "pistonRoot",
                "responses": {"200": {"description": "A banner.", "content": {"application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"message": {"type": "string"}},
                        "required": ["message"],
                    },
                }}}},
            }},
        },
        "components": {"schemas": schemas["$defs"]},
    }  # fmt: skip
