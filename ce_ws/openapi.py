"""The OpenAPI document of the REST API, generated from the protocol's models.

The schemas come from the same pydantic models that validate the requests
and build the responses (`ce_ws.protocol`); only the paths are written here.
`docs_page` renders the document as a small HTML page (no script, no CDN).
"""

from __future__ import annotations

import functools
import html
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ce_ws import __version__
from ce_ws.protocol import (
    ErrorBody,
    ExecuteRequest,
    ExecuteResponse,
    Health,
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
            "description": "Ready when the engine answers, the runtime image is present and "
            "current, and a run slot is free.",
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
            "responses": {"200": _text("text/html", "An HTML rendering of this document.")},
        }},
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


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>" if text else ""


def _operation_html(path: str, method: str, operation: dict[str, Any]) -> str:
    responses = "".join(
        f"<li><code>{html.escape(status)}</code> {html.escape(response['description'])}</li>"
        for status, response in operation["responses"].items()
    )
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    name = html.escape(ref.rsplit("/", 1)[1]) if ref else ""
    request = f"<p>Body: <a href='#{name}'>{name}</a></p>" if name else ""
    return (
        f"<section><h2><code>{method.upper()} {html.escape(path)}</code></h2>"
        f"<p>{html.escape(operation['summary'])}</p>"
        f"{_paragraph(operation.get('description', ''))}"
        f"{request}<ul>{responses}</ul></section>"
    )


@functools.cache
def docs_page() -> str:
    """The document as a plain HTML page: endpoints, then every schema."""
    document = openapi_document()
    operations = "".join(
        _operation_html(path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    )
    schemas = "".join(
        f"<section id='{html.escape(name)}'><h3>{html.escape(name)}</h3>"
        f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre></section>"
        for name, schema in document["components"]["schemas"].items()
    )
    title = html.escape(document["info"]["title"])
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title} REST API</title>"
        "<style>body{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}"
        "pre{background:#f4f4f4;padding:.5rem;overflow:auto}</style></head><body>"
        f"<h1>{title} REST API {html.escape(document['info']['version'])}</h1>"
        f"<p>{html.escape(document['info']['description'])}</p>"
        "<p>Machine-readable: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a></p>"
        f"{operations}<h2>Schemas</h2>{schemas}</body></html>"
    )
