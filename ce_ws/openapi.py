"""The OpenAPI document of the REST API, generated from the protocol's models.

The schemas come from the same pydantic models that validate the requests
and build the responses (`ce_ws.protocol`); only the paths are written here.
`GET /docs` shows it in Swagger UI (static/docs.html, served locally).
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ce_ws import __version__
from ce_ws.config import ENGINE_NAME_PATTERN
from ce_ws.protocol import (
    EngineList,
    ErrorBody,
    ExecuteRequest,
    ExecuteResponse,
    Health,
    KilledRun,
    LanguageInfo,
    Readiness,
)

OPENAPI_VERSION = "3.1.0"
_REF = "#/components/schemas/{model}"
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (ExecuteRequest, "validation"),
    (ExecuteResponse, "serialization"),
    (ErrorBody, "serialization"),
    (LanguageInfo, "serialization"),
    (Health, "serialization"),
    (Readiness, "serialization"),
    (EngineList, "serialization"),
    (KilledRun, "serialization"),
]
#: The header of a "try again later" refusal.
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_DESCRIPTION = (
    "Batch execution of untrusted code in locked-down containers. "
    "The interactive terminal is the WebSocket `GET /api/v1/ws` (see docs/protocol.md). "
    "Sizes are bytes, durations milliseconds."
)


def ref(model: type[BaseModel]) -> dict[str, str]:
    """A reference to `model`'s schema among the document's components."""
    return {"$ref": _REF.format(model=model.__name__)}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response (or request body) of JSON with `schema`."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def _refusal(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response = json_body(ref(ErrorBody), description)
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


def _execute_operation() -> dict[str, Any]:
    return {
        "summary": "Run a program to its end and return its output",
        "description": (
            "No terminal: stdout and stderr come back apart, and `output` is the two "
            "interleaved in arrival order. `stdin` is the whole input, written once the "
            "program starts and then closed. Compiled languages report their compile "
            "stage in `compile`. Limits, statuses and error codes are the WebSocket's."
        ),
        "operationId": "execute",
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref(ExecuteRequest)}}},
        "responses": {
            "200": json_body(ref(ExecuteResponse), "The run ended (whatever its status)."),
            "400": _refusal("Invalid request: bad_message, unknown_language, code_too_large, limit_exceeded."),
            "401": _refusal("Tokens are configured and none valid was given (unauthorized)."),
            "403": _refusal("Host or Origin not the server's own nor allowed (host_not_allowed, origin_not_allowed)."),
            "408": _refusal("The request body did not arrive within the body deadline (bad_message)."),
            "413": _refusal("The request body is over the size cap (code_too_large)."),
            "415": _refusal("The body is not sent as application/json (unsupported_media_type)."),
            "429": _refusal("Too many runs, refused requests or open requests from this client (rate_limited).", retry_after=True),
            "503": _refusal("No slot came free in time (busy).", retry_after=True),
        },
    }  # fmt: skip


def _admin_operation(
    summary: str,
    operation_id: str,
    answer: dict[str, Any],
    *,
    not_found: str | None = None,
    busy: str | None = None,
) -> dict[str, Any]:
    """An operator's request: the admin token, then the answer or a refusal."""
    responses = {
        "200": answer,
        "401": _refusal("No admin API (CE_ADMIN_TOKEN unset), or not its token (unauthorized)."),
        "403": _refusal("Host not the server's own nor allowed (host_not_allowed)."),
    }
    if not_found is not None:
        responses["404"] = _refusal(not_found)
    if busy is not None:
        responses["503"] = _refusal(busy, retry_after=True)
    return {"summary": summary, "operationId": operation_id, "security": [{"bearer": []}],
            "responses": responses}  # fmt: skip


def _admin_paths() -> dict[str, Any]:
    engines = json_body(ref(EngineList), "Every engine's condition (after the change).")
    engine = [
        {
            "name": "name",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": ENGINE_NAME_PATTERN},
        }
    ]
    unknown_engine = "This server drives no engine of this name (unknown_engine)."
    return {
        "/admin/engines": {"get": _admin_operation("The engines and their condition",
                                                   "engines", engines)},
        "/admin/engines/{name}/drain": {"post": {
            **_admin_operation("Place no new run on this engine; live runs go on", "drainEngine",
                               engines, not_found=unknown_engine),
            "parameters": engine,
        }},
        "/admin/engines/{name}/resume": {"post": {
            **_admin_operation("Place runs on this engine again", "resumeEngine", engines,
                               not_found=unknown_engine),
            "parameters": engine,
        }},
        "/admin/runs/{run_id}/kill": {"post": {
            **_admin_operation(
                "End a live run (status killed), on whichever replica holds it", "killRun",
                json_body(ref(KilledRun), "The run was told to end."),
                not_found="No replica has a live run of this id (unknown_run).",
                busy="The replica holding the run does not answer (busy).",
            ),
            "parameters": [{"name": "run_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
        }},
    }  # fmt: skip


def _paths() -> dict[str, Any]:
    languages = {"type": "array", "items": ref(LanguageInfo)}
    return {
        "/api/v1/languages": {"get": {
            "summary": "The languages this server runs",
            "operationId": "languages",
            "responses": {"200": json_body(languages, "Every language with its aliases.")},
        }},
        "/api/v1/execute": {"post": _execute_operation()},
        "/api/v1/recordings/{name}": {"get": {
            "summary": "A run's recording (asciicast v2)",
            "description": "The URL `exit.recording` gave: `<32 hex digits>.cast`. Kept within "
            "CE_RECORDINGS__MAX_BYTES and CE_RECORDINGS__MAX_AGE_S, oldest first out.",
            "operationId": "recording",
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": "^[0-9a-f]{32}\\.cast$"}}],
            "responses": {
                "200": _text("application/x-asciicast", "The recording: a header line, then one event a line."),
                "404": _refusal("No such recording, or it expired (not_found)."),
            },
        }},
        "/api/v1/openapi.json": {"get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {"200": json_body({"type": "object"}, "The OpenAPI document.")},
        }},
        "/healthz": {"get": {
            "summary": "The process is alive",
            "operationId": "healthz",
            "responses": {"200": json_body(ref(Health), "Alive.")},
        }},
        "/readyz": {"get": {
            "summary": "Whether a run would start now",
            "description": "Ready when an engine answers and takes runs (its runtime image "
            "present and current, not drained, below its capacity) and a run slot is free; "
            "`engines` shows each one.",
            "operationId": "readyz",
            "responses": {
                "200": json_body(ref(Readiness), "Ready."),
                "503": json_body(ref(Readiness), "Not ready; `reason` says why."),
            },
        }},
        "/metrics": {"get": {
            "summary": "Prometheus metrics",
            "operationId": "metrics",
            "responses": {"200": _text("text/plain", "Prometheus text exposition format.")},
        }},
        "/docs": {"get": {
            "summary": "This document as a page",
            "operationId": "docs",
            "responses": {"200": _text("text/html", "This document in an interactive viewer (Swagger UI).")},
        }},
        **_admin_paths(),
    }  # fmt: skip


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole document; built once, on the first request for it."""
    return build_document(
        title="Code Executor", description=_DESCRIPTION, paths=_paths(), models=_MODELS
    )


def build_document(
    *,
    title: str,
    description: str,
    paths: dict[str, Any],
    models: list[tuple[type[BaseModel], JsonSchemaMode]],
) -> dict[str, Any]:
    """An OpenAPI document of `paths`, with the schemas of `models` as its components."""
    _, schemas = models_json_schema(models, ref_template=_REF)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": __version__, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
