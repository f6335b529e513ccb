"""Codapi under `/codapi` (contract §5): its widget's `exec`, a health check, CORS.

A thin adapter over the Runner. A Codapi request (`sandbox`, `version`,
`command`, `files`) becomes a `RunRequest` and runs to its end with
`run_to_end`, as REST's do; its `ExecuteResponse` becomes Codapi's
`{id, ok, duration, stdout, stderr}`. Refusals answer in that same shape,
with Codapi's statuses, on every `/codapi` path. A browser page may use the
surface when its origin is the server's own or in `CE_ALLOWED_ORIGINS` (any,
with `CE_CODAPI__ALLOW_ANY_ORIGIN`); only then does it get the CORS headers
its browser needs. The mapping and every difference: docs/compat/codapi.md.
"""

from __future__ import annotations

import functools
import time
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import hdrs, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ce_ws.api.appkeys import ERROR_SHAPES, LANGUAGES, REFUSALS, RUNNER, SETTINGS
from ce_ws.api.auth import authorized, bearer_token
from ce_ws.api.batch import answer_batch, read_body, run_to_end
from ce_ws.api.guards import own_or_allowed_origin, require_json
from ce_ws.api.http import http_status, json_response, refusal_headers
from ce_ws.api.http_errors import http_exception_headers
from ce_ws.config import Settings
from ce_ws.errors import (
    BadMessage,
    Busy,
    CeError,
    OriginNotAllowed,
    Unauthorized,
    UnknownLanguage,
    UnsupportedMediaType,
    clip,
)
from ce_ws.languages import Language, LanguageTable
from ce_ws.openapi import RETRY_AFTER, build_document, json_body, ref
from ce_ws.protocol import (
    MAX_FILES,
    ExecuteResponse,
    Health,
    LimitRequest,
    RunRequest,
    ServerMessage,
    SourceFile,
    Status,
    refuse_repeated_keys,
    validation_error_to_bad_message,
)
from ce_ws.runs.runner import Client

PREFIX = "/codapi"
EXEC_PATH = f"{PREFIX}/v1/exec"
HEALTH_PATH = f"{PREFIX}/v1/health"
OPENAPI_PATH = f"{PREFIX}/openapi.json"
#: The one command of the sandboxes mapped here (the widget's default).
RUN = "run"
#: The id of a refusal: nothing ran (Codapi's own for a body it cannot read).
NO_ID = "-"
#: What Codapi's server says of a run past its time limit.
TIMEOUT_TEXT = "code execution timeout"
#: Codapi's sandbox names (its sandbox registry's, and the usual short ones) → our languages.
SANDBOXES = {
    "python": "python",
    "javascript": "javascript",
    "node": "javascript",
    "c": "c",
    "gcc": "c",
    "cpp": "cpp",
    "ruby": "ruby",
    "shell": "bash",
    "bash": "bash",
    "sh": "bash",
    "ash": "bash",
}
#: Where Codapi's statuses differ from the native API's (the rest are the same).
_STATUS = {
    UnknownLanguage: HTTPStatus.NOT_FOUND,  # unknown sandbox, version or command
    UnsupportedMediaType: HTTPStatus.BAD_REQUEST,
    Busy: HTTPStatus.TOO_MANY_REQUESTS,
}
_CORS = {
    hdrs.ACCESS_CONTROL_ALLOW_METHODS: "GET, HEAD, POST, OPTIONS",
    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: "authorization, content-type",
    hdrs.ACCESS_CONTROL_MAX_AGE: "3600",
}


class CodapiRequest(BaseModel):
    """`POST /codapi/v1/exec`: what the widget sends; `files[""]` is the snippet's code."""

    # As the native API's: unknown fields ignored, known ones of their JSON type.
    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        strict=True,
        json_schema_extra={
            "examples": [{"sandbox": "python", "command": "run", "files": {"": "print('hi')"}}]
        },
    )

    sandbox: str = Field(min_length=1, max_length=64)
    version: str | None = Field(None, max_length=64)
    command: str = Field(min_length=1, max_length=64)
    files: dict[str, str] = Field(max_length=MAX_FILES)


class Execution(ServerMessage):
    """Codapi's answer: to a run (`ok` when it exited 0) and to a refusal alike."""

    id: str
    ok: bool
    #: Milliseconds from the start of the run to its end.
    duration: int
    stdout: str
    stderr: str


# -- the mapping: pure functions ---------------------------------------------


def parse_request(body: bytes) -> CodapiRequest:
    """The body as a `CodapiRequest`, or `BadMessage` naming the first bad field."""
    try:
        request = CodapiRequest.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error_to_bad_message(exc) from None
    refuse_repeated_keys(body, "invalid request")
    return request


def _version_matches(asked: str, have: str) -> bool:
    """`3`, `3.11` and `3.11.2` name 3.11.2; `3.1` does not."""
    return have.split(".")[: len(asked.split("."))] == asked.split(".")


def resolve_sandbox(request: CodapiRequest, languages: LanguageTable) -> Language:
    """Our language for the request's sandbox, version and command (else Codapi's 404)."""
    name = SANDBOXES.get(request.sandbox)
    if name is None:
        known = ", ".join(sorted(SANDBOXES))
        raise UnknownLanguage(
            f"unknown sandbox {clip(request.sandbox)!r}; known: {known}", field="sandbox"
        )
    language = languages.resolve(name)
    if request.version and not _version_matches(request.version, language.version):
        raise UnknownLanguage(
            f"unknown version {clip(request.version)!r} of {request.sandbox};"
            f" this server has {language.version}",
            field="version",
        )
    if request.command != RUN:
        # Codapi names what runs by sandbox and command; our language is both.
        raise UnknownLanguage(
            f"unknown command {request.sandbox}.{clip(request.command)}; only {RUN!r}",
            field="command",
        )
    return language


def _source_file(name: str, content: str) -> SourceFile:
    """One file; a data URL (how the widget sends a binary file) decoded as Codapi does."""
    if not content.startswith("data:"):
        return SourceFile(name=name, content=content)
    meta, comma, data = content.partition(",")
    if not comma:
        raise BadMessage(f"file {clip(name)!r} is not a valid data URL", field="files")
    encoding: Literal["utf8", "base64"] = "base64" if meta.endswith("base64") else "utf8"
    return SourceFile(name=name, content=data, encoding=encoding)


def source_files(files: dict[str, str], language: Language) -> list[SourceFile]:
    """Codapi's files as ours, the entry first; `""` names the language's entry file."""
    if len(files) < 2 and not "".join(files.values()).strip():
        raise BadMessage("empty request: there is no code to run", field="files")
    entry = language.entry_file
    named = {name or entry: content for name, content in files.items()}
    if len(named) < len(files):
        raise BadMessage(f"files '' and {entry!r} are the same file", field="files")
    if entry not in named:
        raise BadMessage(f"no code to run: give it as files[''] or files[{entry!r}]", field="files")
    order = [entry, *(name for name in named if name != entry)]
    return [_source_file(name, named[name]) for name in order]


def to_run_request(
    request: CodapiRequest, languages: LanguageTable, settings: Settings
) -> RunRequest:
    """The run a Codapi request asks for, within Codapi's wall-clock limit."""
    language = resolve_sandbox(request, languages)
    wall_ms = min(settings.codapi.wall_ms, settings.defaults.wall_ms)
    try:
        return RunRequest(
            language=language.name,
            files=source_files(request.files, language),
            limits=LimitRequest(wall_ms=wall_ms),
        )
    except ValidationError as exc:  # e.g. a file name too long
        raise validation_error_to_bad_message(exc) from None


def _failure_reason(result: ExecuteResponse) -> str:
    """Why a run did not succeed, in Codapi's words where it has them."""
    if result.status is Status.TIMEOUT:
        return TIMEOUT_TEXT
    if result.status in (Status.EXITED, Status.COMPILE_ERROR):
        if result.signal is not None:
            return f"signal: {result.signal}"
        if result.exit_code is not None:
            return f"exit status {result.exit_code}"
    return result.message or result.status.value


def execution(result: ExecuteResponse, request: CodapiRequest, duration_ms: int) -> Execution:
    """A finished run as Codapi says it.

    `ok` only when the program exited 0. A failed run's output all goes to
    `stderr` (the compiler's, stdout, then stderr: arrival order would cut
    lines, two pipes being read apart) and ends with the reason, as Codapi's
    server does: its widget shows `stdout` when there is any, else `stderr`.
    """
    ok = result.status is Status.EXITED and result.exit_code == 0
    compiler = result.compile.output if result.compile else ""
    if ok:
        stdout, stderr = result.stdout, compiler + result.stderr
    else:
        text, reason = (compiler + result.stdout + result.stderr).strip(), _failure_reason(result)
        stdout, stderr = "", f"{text} ({reason})" if text else reason
    sandbox = f"{request.sandbox}.{request.version}" if request.version else request.sandbox
    return Execution(
        id=f"{sandbox}_{request.command}_{result.run_id}",
        ok=ok,
        duration=duration_ms,
        stdout=stdout,
        stderr=stderr,
    )


def codapi_status(error: CeError) -> HTTPStatus:
    """The HTTP status Codapi's server gives this refusal."""
    return _STATUS.get(type(error)) or http_status(error)


def refusal(exc: CeError | web.HTTPException) -> web.Response:
    """Any refusal on a `/codapi` path, in Codapi's shape (`ERROR_SHAPES`)."""
    if isinstance(exc, CeError):  # the field first, as Codapi's argument errors say it
        message = f"{exc.field}: {exc.message}" if exc.field else exc.message
        status, headers = codapi_status(exc), []
    else:  # aiohttp's own: no route, wrong method
        status, message = HTTPStatus(exc.status), exc.reason
        headers = http_exception_headers(exc)
    body = Execution(id=NO_ID, ok=False, duration=0, stdout="", stderr=message)
    response = json_response(body, status)
    response.headers.update(refusal_headers(status))
    for name, value in headers:
        response.headers.add(name, value)
    return response


# -- the web side --------------------------------------------------------------


def _require_allowed_origin(request: web.Request) -> None:
    """A page of the server's own origin, an allowed one, or any if the operator says so."""
    if not (request.app[SETTINGS].codapi.allow_any_origin or own_or_allowed_origin(request)):
        raise OriginNotAllowed(
            "a page of this origin may not use this server;"
            " see CE_ALLOWED_ORIGINS and CE_CODAPI__ALLOW_ANY_ORIGIN"
        )


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every `/codapi` response: the CORS headers, for an origin that may use it."""
    if request.path != PREFIX and not request.path.startswith(f"{PREFIX}/"):
        return
    if request.app[SETTINGS].codapi.allow_any_origin:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = "*"
    else:
        response.headers.add(hdrs.VARY, hdrs.ORIGIN)
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None or not own_or_allowed_origin(request):
            return
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers.update(_CORS)


async def exec_(request: web.Request) -> web.StreamResponse:
    """`POST /codapi/v1/exec`: run the widget's code to its end."""
    return await answer_batch(request, via="codapi", handle=_exec, refuse=refusal)


async def _exec(request: web.Request, client: Client) -> tuple[HTTPStatus, dict[str, Any]]:
    """Check, parse and run one request; raises the `CeError` that refuses it."""
    app = request.app
    settings = app[SETTINGS]
    try:
        _require_allowed_origin(request)  # before the body is read
        require_json(request)
        app[REFUSALS].check_left(client.key)
        if not authorized(settings.tokens, bearer_token(request)):
            raise Unauthorized("a valid token is required (Authorization: Bearer)")
        codapi_request = parse_request(await read_body(request, settings))
        run_request = to_run_request(codapi_request, app[LANGUAGES], settings)
    except CeError as exc:
        app[RUNNER].refused(client, exc)
        raise
    started = time.monotonic()
    result = await run_to_end(request, run_request, client)
    duration_ms = round((time.monotonic() - started) * 1000)
    # An engine failure is the server's, not the code's: Codapi's 500.
    failed = result.status is Status.ERROR
    status = HTTPStatus.INTERNAL_SERVER_ERROR if failed else HTTPStatus.OK
    return status, execution(result, codapi_request, duration_ms).to_data()


async def preflight(request: web.Request) -> web.Response:
    """`OPTIONS`: a browser asks whether its page may send the widget's request."""
    _require_allowed_origin(request)
    return web.Response()


async def health(request: web.Request) -> web.Response:
    """`GET`/`HEAD /codapi/v1/health`: the widget (0.20 on) asks before each run."""
    return json_response(Health())


async def openapi(request: web.Request) -> web.Response:
    """`GET /codapi/openapi.json`."""
    return web.json_response(openapi_document())


def add_routes(app: web.Application) -> None:
    """Register the surface in `create_app`: routes, its refusals' shape, its CORS headers."""
    app[ERROR_SHAPES][PREFIX] = refusal
    app.on_response_prepare.append(cors_headers)
    app.router.add_post(EXEC_PATH, exec_)
    app.router.add_route(hdrs.METH_OPTIONS, EXEC_PATH, preflight)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_route(hdrs.METH_OPTIONS, HEALTH_PATH, preflight)
    app.router.add_get(OPENAPI_PATH, openapi)


# -- the OpenAPI document ------------------------------------------------------


def _refused(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    response = json_body(ref(Execution), f"{description} `ok` is false, `stderr` says why.")
    if retry_after:
        response["headers"] = RETRY_AFTER
    return response


def _exec_operation() -> dict[str, Any]:
    return {
        "summary": "Run a Codapi snippet to its end",
        "description": (
            "`files['']` is the code; other keys name more files. `ok` is true when the "
            "program exited 0; a failed run's output (a compiler's first) is in `stderr`."
        ),
        "operationId": "codapiExec",
        "security": [{}, {"bearer": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref(CodapiRequest)}}},
        "responses": {
            "200": json_body(ref(Execution), "The run ended (whatever its outcome)."),
            "400": _refused("Invalid request, or not sent as application/json."),
            "401": _refused("Tokens are configured and no valid bearer token was given."),
            "403": _refused("Host or Origin not allowed."),
            "404": _refused("Unknown sandbox, version or command."),
            "408": _refused("The request body did not arrive within the body deadline."),
            "413": _refused("The request body or the code is too large."),
            "429": _refused("Too many runs or requests from this client, or no slot free.", retry_after=True),
            "500": _refused("The sandbox failed: the server's fault, not the code's."),
        },
    }  # fmt: skip


def _preflight_operation(path: str) -> dict[str, Any]:
    return {
        "summary": f"CORS preflight of {path}",
        "description": "The CORS headers come only for an origin that may use this surface.",
        "operationId": f"codapiPreflight{path.rsplit('/', 1)[1].capitalize()}",
        "responses": {"200": {"description": "This origin (or none) may send the request."},
                      "403": _refused("This origin may not use this server.")},
    }  # fmt: skip


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The Codapi surface's own document, from the models that parse and answer it."""
    health = {"summary": "The server is up", "responses": {"200": json_body(ref(Health), "Up.")}}
    paths = {
        EXEC_PATH: {"post": _exec_operation(), "options": _preflight_operation(EXEC_PATH)},
        HEALTH_PATH: {
            "get": {**health, "operationId": "codapiHealth"},
            "head": {"summary": health["summary"], "operationId": "codapiHealthHead",
                     "responses": {"200": {"description": "Up."}}},
            "options": _preflight_operation(HEALTH_PATH),
        },
        OPENAPI_PATH: {"get": {"summary": "This document", "operationId": "codapiOpenapi",
                               "responses": {"200": json_body({"type": "object"}, "This document.")}}},
    }  # fmt: skip
    return build_document(
        title="Code Executor: Codapi API",
        description="Codapi's `/v1` under `/codapi`: point the widget's `url` at `/codapi/v1`.",
        paths=paths,
        models=[
            (CodapiRequest, "validation"),
            (Execution, "serialization"),
            (Health, "serialization"),
        ],
    )
