"""Judge0 CE 1.13.1 under `/judge0` (contract §5): a thin adapter over the Runner.

Handlers parse Judge0's requests (`judge0_wire`), hand submissions to the
`Judge0Service` (which runs them and keeps their results in the store) and
answer in Judge0's shapes: refusals are `{"error": ...}`, field errors
`{"field": [...]}` with 422, an unknown token or route 404
`{"status": 404, "error": "Not Found"}`, a missing token 401 with no body.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ce_ws.api.appkeys import IDENTITY, LANGUAGES, REFUSALS, RUNNER, SETTINGS
from ce_ws.api.auth import authorized, bearer_token
from ce_ws.api.batch import CLIENT_CLOSED_REQUEST, ClientLeft, read_body
from ce_ws.api.compat.judge0_mapping import (
    JUDGE0_VERSION,
    Judge0Languages,
    Judge0Status,
    config_info,
)
from ce_ws.api.compat.judge0_openapi import PREFIX, judge0_openapi_document
from ce_ws.api.compat.judge0_redis import RedisJudge0Store
from ce_ws.api.compat.judge0_service import Judge0Service
from ce_ws.api.compat.judge0_store import Judge0Store, SubmissionStore
from ce_ws.api.compat.judge0_views import parse_fields, submission_view
from ce_ws.api.compat.judge0_wire import (
    Judge0Invalid,
    Judge0Refusal,
    ParsedSubmission,
    is_true,
    parse_submission,
)
from ce_ws.api.guards import require_json, require_own_origin
from ce_ws.api.http import http_status
from ce_ws.api.jsonstream import stream_json
from ce_ws.config import Settings
from ce_ws.errors import BadMessage, CeError
from ce_ws.runs.plan import plan_run
from ce_ws.runs.runner import Client

log = logging.getLogger(__name__)

# Declared here, not in appkeys: the service imports the batch module, which imports appkeys.
JUDGE0 = web.AppKey("judge0", Judge0Service)
JUDGE0_LANGUAGES = web.AppKey("judge0_languages", Judge0Languages)
AUTH_HEADER = "X-Auth-Token"
_NOT_FOUND = {"status": HTTPStatus.NOT_FOUND.value, "error": "Not Found"}
#: Our refusal's field → the Judge0 field it is about.
_FIELDS = {"code": "source_code", "files": "source_code", "stdin": "stdin", "args": "command_line_arguments"}  # fmt: skip

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: object, status: int = HTTPStatus.OK) -> web.Response:
    return web.json_response(body, status=status)


def judge0_route(handler: Handler) -> Handler:
    """Judge0's authentication, then Judge0's error shapes for whatever the handler refuses."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        settings = request.app[SETTINGS]
        token = request.headers.get(AUTH_HEADER) or request.query.get(AUTH_HEADER)
        if not authorized(settings.tokens, token, bearer_token(request)):
            return web.Response(status=HTTPStatus.UNAUTHORIZED)
        try:
            return await handler(request)
        except Judge0Refusal as exc:
            return _json(exc.body, exc.status)
        except CeError as exc:
            return _json({"error": exc.message}, http_status(exc))
        except ClientLeft:
            return web.Response(status=CLIENT_CLOSED_REQUEST)

    return answer


def _client(request: web.Request) -> Client:
    return Client(key=request.app[IDENTITY].client_key(request), via="judge0")


async def _read_json(request: web.Request) -> Any:
    """The body of a request that runs code: origin, type, refusal budget, size and time."""
    client = _client(request)
    try:
        require_own_origin(request)
        require_json(request)
        request.app[REFUSALS].check_left(client.key)
        body = await read_body(request, request.app[SETTINGS])
    except CeError as exc:
        _refused(request, exc)
        raise
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        _refused(request, BadMessage("the request body is not valid JSON"))
        raise Judge0Refusal.error(
            HTTPStatus.BAD_REQUEST, "the request body is not valid JSON"
        ) from None


def _refused(request: web.Request, error: CeError) -> None:
    """Count and log a refusal as the native API does (telemetry via="judge0")."""
    client = _client(request)
    request.app[REFUSALS].spend(client.key)
    request.app[RUNNER].refused(client, error)
    log.info("judge0 refused %s: %s", error.code, error.message)


def _parse(request: web.Request, data: object) -> ParsedSubmission:
    """One submission, checked as Judge0 does and then as a run of ours would be."""
    app = request.app
    settings = app[SETTINGS]
    try:
        parsed = parse_submission(
            data,
            encoded=is_true(request.query.get("base64_encoded")),
            settings=settings,
            languages=app[JUDGE0_LANGUAGES],
        )
        plan_run(parsed.run_request(settings), languages=app[LANGUAGES], settings=settings)
    except Judge0Invalid as exc:
        _refused(request, BadMessage(f"invalid Judge0 submission: {exc.errors}"))
        raise
    except CeError as exc:
        _refused(request, exc)
        raise Judge0Invalid({_FIELDS.get(exc.field or "", "base"): [exc.message]}) from None
    return parsed


def _queue_room(request: web.Request, count: int) -> None:
    if not request.app[JUDGE0].has_room(count):
        raise Judge0Refusal.error(HTTPStatus.SERVICE_UNAVAILABLE, "queue is full")


# -- submissions ------------------------------------------------------------


@judge0_route
async def create(request: web.Request) -> web.StreamResponse:
    """`POST /submissions`: 201 with the token; with `wait=true`, with the ended submission."""
    fields = parse_fields(request.query.get("fields"))
    parsed = _parse(request, await _read_json(request))
    _queue_room(request, 1)
    service = request.app[JUDGE0]
    submission = await service.submit(parsed, _client(request))
    if not is_true(request.query.get("wait")):
        return _json({"token": submission.token}, HTTPStatus.CREATED)
    view = submission_view(
        await service.ended(submission),
        fields=fields,
        encoded=is_true(request.query.get("base64_encoded")),
        languages=request.app[JUDGE0_LANGUAGES],
    )
    return await stream_json(request, view, HTTPStatus.CREATED)


@judge0_route
async def create_batch(request: web.Request) -> web.StreamResponse:
    """`POST /submissions/batch`: a token or field errors for each; 201 if any was valid."""
    data = await _read_json(request)
    items = data.get("submissions") if isinstance(data, dict) else None
    items = items if isinstance(items, list) else []
    _check_batch_size(request, len(items))
    _queue_room(request, len(items))
    answers: list[dict[str, Any]] = []
    for item in items:
        try:
            parsed = _parse(request, item)
        except Judge0Invalid as exc:
            answers.append(exc.body)
            continue
        submission = await request.app[JUDGE0].submit(parsed, _client(request))
        answers.append({"token": submission.token})
    valid = any("token" in answer for answer in answers)
    return _json(answers, HTTPStatus.CREATED if valid else HTTPStatus.UNPROCESSABLE_ENTITY)


def _check_batch_size(request: web.Request, count: int) -> None:
    most = request.app[SETTINGS].judge0.max_batch
    if count > most:
        raise Judge0Refusal.error(
            HTTPStatus.BAD_REQUEST,
            f"number of submissions in a batch should be less than or equal to {most}",
        )
    if count == 0:
        raise Judge0Refusal.error(
            HTTPStatus.BAD_REQUEST, "there should be at least one submission in a batch"
        )


@judge0_route
async def show(request: web.Request) -> web.StreamResponse:
    """`GET /submissions/{token}`."""
    fields = parse_fields(request.query.get("fields"))
    token = request.match_info["token"]
    found = await request.app[JUDGE0].get_many([token])
    if token not in found:
        return _json(_NOT_FOUND, HTTPStatus.NOT_FOUND)
    view = submission_view(
        found[token],
        fields=fields,
        encoded=is_true(request.query.get("base64_encoded")),
        languages=request.app[JUDGE0_LANGUAGES],
    )
    return await stream_json(request, view)  # outputs up to the cap, in pieces


@judge0_route
async def show_batch(request: web.Request) -> web.StreamResponse:
    """`GET /submissions/batch?tokens=...`: null for a token not known."""
    fields = parse_fields(request.query.get("fields"))
    text = (request.headers.get("tokens") or request.query.get("tokens") or "").strip()
    tokens = [token for token in text.split(",") if token] if text else []
    _check_batch_size(request, len(tokens))
    found = await request.app[JUDGE0].get_many(tokens)
    encoded = is_true(request.query.get("base64_encoded"))
    languages = request.app[JUDGE0_LANGUAGES]
    views = [
        submission_view(found[token], fields=fields, encoded=encoded, languages=languages)
        if token in found
        else None
        for token in tokens
    ]
    return await stream_json(request, {"submissions": views})


# -- the catalogue ----------------------------------------------------------


@judge0_route
async def languages(request: web.Request) -> web.StreamResponse:
    """`GET /languages`: one id per language."""
    listed = request.app[JUDGE0_LANGUAGES].listed
    return _json([{"id": entry.id, "name": entry.name} for entry in listed])


@judge0_route
async def language(request: web.Request) -> web.StreamResponse:
    """`GET /languages/{id}`."""
    text = request.match_info["id"]
    found = request.app[JUDGE0_LANGUAGES].by_id.get(int(text)) if text.isdecimal() else None
    if found is None:
        return _json(_NOT_FOUND, HTTPStatus.NOT_FOUND)
    return _json(found.detail())


@judge0_route
async def statuses(request: web.Request) -> web.StreamResponse:
    """`GET /statuses`."""
    return _json(
        [{"id": status.value, "description": status.description} for status in Judge0Status]
    )


@judge0_route
async def about(request: web.Request) -> web.StreamResponse:
    """`GET /about`: the Judge0 version whose API this is (the SDK's language tables key on it)."""
    return _json(
        {
            "version": JUDGE0_VERSION,
            "homepage": None,
            "source_code": None,
            "maintainer": "Code Executor (a Judge0 CE compatible surface)",
        }
    )


@judge0_route
async def config(request: web.Request) -> web.StreamResponse:
    """`GET /config_info`: Judge0's 39 configuration keys, from our limits."""
    return _json(config_info(request.app[SETTINGS]))


async def openapi(request: web.Request) -> web.Response:
    """`GET /judge0/openapi.json`."""
    return web.json_response(judge0_openapi_document())


@judge0_route
async def not_found(request: web.Request) -> web.StreamResponse:
    """Any other path under `/judge0`, as Rails answers it."""
    return _json(_NOT_FOUND, HTTPStatus.NOT_FOUND)


# -- wiring -----------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    """Called by `create_app` once its keys are set: the routes, the service and its cleanup."""
    settings = app[SETTINGS]
    app[JUDGE0_LANGUAGES] = Judge0Languages(app[LANGUAGES])
    app[JUDGE0] = Judge0Service(store=_store(settings), runner=app[RUNNER], settings=settings)
    app.cleanup_ctx.append(judge0_submissions)
    router = app.router
    router.add_post(f"{PREFIX}/submissions", create)
    router.add_post(f"{PREFIX}/submissions/batch", create_batch)
    router.add_get(f"{PREFIX}/submissions/batch", show_batch)
    router.add_get(f"{PREFIX}/submissions/{{token}}", show)
    router.add_get(f"{PREFIX}/languages", languages)
    router.add_get(f"{PREFIX}/languages/{{id}}", language)
    router.add_get(f"{PREFIX}/statuses", statuses)
    router.add_get(f"{PREFIX}/about", about)
    router.add_get(f"{PREFIX}/config_info", config)
    router.add_get(f"{PREFIX}/openapi.json", openapi)
    router.add_route("*", f"{PREFIX}/{{tail:.*}}", not_found)


def _store(settings: Settings) -> SubmissionStore:
    """Redis when replicas share one (`CE_REDIS_URL`), else this server's SQLite file."""
    if settings.redis_url is None:
        return Judge0Store(settings.judge0)
    return RedisJudge0Store(settings.judge0, url=settings.redis_url, server_id=settings.server_id)


async def judge0_submissions(app: web.Application) -> AsyncIterator[None]:
    """The service's life: the store opened, and at the end (after the Runner's), results kept and the store closed."""
    await app[JUDGE0].start()
    yield
    await app[JUDGE0].aclose(grace_s=app[SETTINGS].shutdown_grace_s)
