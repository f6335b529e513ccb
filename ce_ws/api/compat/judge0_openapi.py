"""The OpenAPI document of the Judge0 surface (`/judge0/openapi.json`), from its pydantic models."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from ce_ws.api.compat.judge0_mapping import JUDGE0_VERSION
from ce_ws.api.compat.judge0_views import (
    AboutView,
    BatchView,
    ErrorView,
    LanguageDetail,
    LanguageName,
    NotFoundView,
    StatusView,
    SubmissionView,
    TokenView,
)
from ce_ws.api.compat.judge0_wire import BatchRequest, SubmissionRequest

PREFIX = "/judge0"
_REF = "#/components/schemas/{model}"
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (SubmissionRequest, "validation"),
    (BatchRequest, "validation"),
    *(
        (model, "serialization")
        for model in (
            SubmissionView, TokenView, BatchView, ErrorView, NotFoundView,
            StatusView, LanguageName, LanguageDetail, AboutView,
        )
    ),
]  # fmt: skip
_FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
_QUERY = {
    "base64_encoded": "`true`: text fields are sent and answered in Base64.",
    "wait": "`true`: answer once the submission has ended, with its result.",
    "fields": "Comma-separated fields to answer with; `*` for all.",
    "tokens": "Comma-separated submission tokens.",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": name in required,
         "description": _QUERY[name], "schema": {"type": "string"}}
        for name in names
    ]  # fmt: skip


def _refusals(*statuses: str) -> dict[str, Any]:
    described = {
        "400": _json(
            _ref(ErrorView), "Judge0's refusal, e.g. invalid fields or a batch too large."
        ),
        "401": {
            "description": "Tokens are configured and no valid X-Auth-Token was given (empty body)."
        },
        "403": _json(_ref(ErrorView), "A page of another origin."),
        "404": _json(_ref(NotFoundView), "No such submission or language."),
        "408": _json(_ref(ErrorView), "The body did not arrive in time."),
        "413": _json(_ref(ErrorView), "The body is over the size cap."),
        "415": _json(_ref(ErrorView), "The body is not sent as application/json."),
        "422": _json(_FIELD_ERRORS, "Field errors, Judge0's: {field: [message, ...]}."),
        "429": _json(_ref(ErrorView), "Too many refused requests from this client."),
        "503": _json(_ref(ErrorView), "The queue is full."),
    }
    return {status: described[status] for status in statuses}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _create() -> dict[str, Any]:
    return {
        "summary": "Create a submission",
        "operationId": "judge0CreateSubmission",
        "parameters": _query("base64_encoded", "wait", "fields"),
        "requestBody": _body(SubmissionRequest),
        "responses": {
            "201": _json(_ref(SubmissionView), "Its token; with wait=true, the ended submission."),
            **_refusals("400", "401", "403", "408", "413", "415", "422", "429", "503"),
        },
    }


def _create_batch() -> dict[str, Any]:
    item = {"anyOf": [_ref(TokenView), _FIELD_ERRORS]}
    return {
        "summary": "Create several submissions",
        "operationId": "judge0CreateBatch",
        "parameters": _query("base64_encoded"),
        "requestBody": _body(BatchRequest),
        "responses": {
            "201": _json({"type": "array", "items": item}, "A token (or field errors) for each."),
            "422": _json(
                {"type": "array", "items": item}, "None was valid: field errors for each."
            ),
            **_refusals("400", "401", "403", "408", "413", "415", "429", "503"),
        },
    }


def _get(summary: str, operation: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "operationId": operation,
        **extra,
        "responses": {"200": _json(schema, summary), **_refusals("400", "401", "404")},
    }


def _paths() -> dict[str, Any]:
    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    language_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    listing = {"type": "array", "items": _ref(LanguageName)}
    return {
        f"{PREFIX}/submissions": {"post": _create()},
        f"{PREFIX}/submissions/batch": {
            "post": _create_batch(),
            "get": _get("Several submissions", "judge0GetBatch", _ref(BatchView),
                        parameters=_query("tokens", "base64_encoded", "fields", required=("tokens",))),
        },
        f"{PREFIX}/submissions/{{token}}": {
            "get": _get("A submission", "judge0GetSubmission", _ref(SubmissionView),
                        parameters=[token, *_query("base64_encoded", "fields")]),
        },
        f"{PREFIX}/languages": {"get": _get("The languages", "judge0Languages", listing)},
        f"{PREFIX}/languages/{{id}}": {
            "get": _get("A language", "judge0Language", _ref(LanguageDetail), parameters=[language_id]),
        },
        f"{PREFIX}/statuses": {
            "get": _get("The statuses", "judge0Statuses", {"type": "array", "items": _ref(StatusView)}),
        },
        f"{PREFIX}/about": {"get": _get("About this server", "judge0About", _ref(AboutView))},
        f"{PREFIX}/config_info": {
            "get": _get("Limits and options (Judge0's Config)", "judge0ConfigInfo", {"type": "object"}),
        },
    }  # fmt: skip


@functools.cache
def judge0_openapi_document() -> dict[str, Any]:
    """The whole document; built once, on the first request for it."""
    _, schemas = models_json_schema(_MODELS, ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Code Executor: Judge0 CE compatible API",
            "version": JUDGE0_VERSION,
            "description": "Judge0 CE 1.13.1's submissions API over this server's sandbox; "
            "see docs/compat/judge0.md for the differences.",
        },
        "paths": _paths(),
        "components": {"schemas": schemas["$defs"]},
    }
