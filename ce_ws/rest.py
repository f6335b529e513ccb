"""The batch REST API (contract §2) and the operational endpoints.

Web layer: `execute` checks a request like the WebSocket's `run` does, then
drives the same session `Run` with no terminal; `BatchClient` collects what
the run sends. Readiness reaches the engine only through `Engine`'s methods.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from http import HTTPStatus

from aiohttp import web
from pydantic import TypeAdapter

from ce_ws.admission import Admission
from ce_ws.appkeys import (
    ADMISSION,
    BATCH_RUNS,
    ENGINE,
    LANGUAGES,
    METRICS,
    POOL,
    RATE_LIMITER,
    REFUSALS,
    RUN_TASKS,
    SANDBOX,
    SETTINGS,
    TELEMETRY,
)
from ce_ws.auth import bearer_token, token_is_valid
from ce_ws.config import Settings
from ce_ws.errors import (
    BadMessage,
    BodyTimeout,
    BodyTooLarge,
    Busy,
    CeError,
    CodeTooLarge,
    LimitExceeded,
    RateLimited,
    SandboxError,
    Unauthorized,
    UnknownLanguage,
)
from ce_ws.image import RECIPE_LABEL, recipe_hash
from ce_ws.metrics import CONTENT_TYPE
from ce_ws.openapi import docs_page, openapi_document
from ce_ws.plan import RunPlan, plan_run
from ce_ws.protocol import (
    CompileResult,
    ErrorBody,
    ErrorDetail,
    ExecuteRequest,
    ExecuteResponse,
    Exit,
    LanguageInfo,
    Readiness,
    ServerMessage,
    Stage,
    Status,
    parse_execute_request,
)
from ce_ws.session import Run, RunState, Terminal
from ce_ws.telemetry import ClientTelemetry
from ce_ws.types import COMPILER, STDERR, STDOUT, StreamId

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait after a 429 or a 503.
RETRY_AFTER_S = 5
_HTTP_STATUS: dict[type[CeError], HTTPStatus] = {
    BodyTooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    BodyTimeout: HTTPStatus.REQUEST_TIMEOUT,
    BadMessage: HTTPStatus.BAD_REQUEST,
    UnknownLanguage: HTTPStatus.BAD_REQUEST,
    CodeTooLarge: HTTPStatus.BAD_REQUEST,
    LimitExceeded: HTTPStatus.BAD_REQUEST,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    Busy: HTTPStatus.SERVICE_UNAVAILABLE,
    CeError: HTTPStatus.INTERNAL_SERVER_ERROR,
}
#: How often a waiting `execute` checks that its client is still connected.
_CONNECTION_CHECK_S = 0.25
#: nginx's "client closed request": only the access log ever sees it.
CLIENT_CLOSED_REQUEST = 499
_WAIT_AGAIN = {HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE}
_languages_adapter = TypeAdapter(list[LanguageInfo])


def http_status(error: CeError) -> HTTPStatus:
    """The HTTP status of a refusal: its class's, or its nearest parent's."""
    return next(_HTTP_STATUS[cls] for cls in type(error).__mro__ if cls in _HTTP_STATUS)


def json_response(body: ServerMessage, status: int = HTTPStatus.OK) -> web.Response:
    """A model as a JSON response (optional fields left out when unset)."""
    return web.Response(text=body.to_json(), status=status, content_type="application/json")


def error_response(error: CeError) -> web.Response:
    """A refusal as `{error: {code, message, field?}}` with its status."""
    status = http_status(error)
    body = ErrorBody(error=ErrorDetail(code=error.code, message=error.message, field=error.field))
    response = json_response(body, status)
    if status in _WAIT_AGAIN:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    if status is HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


class ClientLeft(Exception):
    """The client closed its connection before its answer: nobody to answer."""


class BatchClient:
    """The REST side of a run: keeps its output (the run's output cap bounds it)."""

    def __init__(self) -> None:
        self.exit: Exit | None = None
        #: Set when the `exit` comes, before the container is removed.
        self.ended = asyncio.Event()
        self._compiled = False
        self._compiler = bytearray()
        self._chunks: list[tuple[StreamId, bytes]] = []

    async def send(self, message: ServerMessage) -> None:
        if isinstance(message, Stage) and message.stage == "compile":
            self._compiled = True
        elif isinstance(message, Exit):
            self.exit = message
            self.ended.set()

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        if stream == COMPILER:
            self._compiler += data
        else:
            self._chunks.append((stream, data))

    def _texts(self) -> tuple[str, str, str]:
        """stdout, stderr, and both interleaved in arrival order."""
        decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in (STDOUT, STDERR)}
        texts: dict[StreamId, list[str]] = {STDOUT: [], STDERR: []}
        both: list[str] = []
        for stream, data in self._chunks:
            key = STDERR if stream == STDERR else STDOUT
            text = decoders[key].decode(data)
            texts[key].append(text)
            both.append(text)
        for key, decoder in decoders.items():  # a character cut short at the end
            tail = decoder.decode(b"", final=True)
            texts[key].append(tail)
            both.append(tail)
        return "".join(texts[STDOUT]), "".join(texts[STDERR]), "".join(both)

    def _compile_result(self, exit_message: Exit) -> CompileResult | None:
        if not self._compiled:
            return None
        output = self._compiler.decode(errors="replace")
        if exit_message.stage == "compile":
            return CompileResult(
                status=exit_message.status, exit_code=exit_message.exit_code, output=output
            )
        return CompileResult(status=Status.EXITED, exit_code=0, output=output)

    def response(self, exit_message: Exit, plan: RunPlan) -> ExecuteResponse:
        """The body of a run that ended; called once, after its `exit`."""
        stdout, stderr, output = self._texts()
        return ExecuteResponse(
            run_id=exit_message.run_id,
            language=plan.language.name,
            version=plan.language.version,
            status=exit_message.status,
            exit_code=exit_message.exit_code,
            signal=exit_message.signal,
            stdout=stdout,
            stderr=stderr,
            output=output,
            wall_ms=exit_message.wall_ms,
            cpu_ms=exit_message.cpu_ms,
            memory_peak_bytes=exit_message.memory_peak_bytes,
            output_bytes=exit_message.output_bytes,
            truncated=exit_message.truncated,
            compile=self._compile_result(exit_message),
            message=exit_message.message,
            id=exit_message.id,
        )


# -- execute -------------------------------------------------------------------


async def execute(request: web.Request) -> web.Response:
    """`POST /api/v1/execute`: run a program to its end; a refusal is a 4xx/5xx body."""
    client_key = request.remote or "unknown"
    telemetry = request.app[TELEMETRY].for_client(client_key, via="rest")
    try:
        return json_response(await _execute(request, client_key, telemetry))
    except ClientLeft:
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    except CeError as exc:
        request.app[REFUSALS].spend(client_key)
        log.info("refused %s: %s", exc.code, exc.message)
        telemetry.refused(exc)
        return error_response(exc)


async def _execute(
    request: web.Request, client_key: str, telemetry: ClientTelemetry
) -> ExecuteResponse:
    app = request.app
    settings = app[SETTINGS]
    # Each refusal costs a parse and a log line: a client that has earned too
    # many is refused before its body is even read.
    app[REFUSALS].check_left(client_key)
    body = await _read_body(request, settings)
    plan = plan_run(
        _authorized_request(request, body, settings), languages=app[LANGUAGES], settings=settings
    )
    app[RATE_LIMITER].check(client_key)
    client = BatchClient()
    run = Run(
        plan,
        sandbox=app[SANDBOX],
        settings=settings,
        client=client,
        terminal=Terminal(tty=False),
        observer=telemetry.run(plan.language.name),
    )
    task = asyncio.create_task(
        _run_admitted(app[ADMISSION], run, client_key, wait_s=settings.capacity.rest_queue_wait_s)
    )
    _track(app, run, task)
    return client.response(await _outcome(task, client, request), plan)


def _track(app: web.Application, run: Run, task: asyncio.Task[None]) -> None:
    """Until its container is gone, shutdown can end the run (it may outlive the response)."""
    app[RUN_TASKS].add(task)
    app[BATCH_RUNS][run] = task
    task.add_done_callback(app[RUN_TASKS].discard)
    task.add_done_callback(lambda _: app[BATCH_RUNS].pop(run, None))


async def _read_body(request: web.Request, settings: Settings) -> bytes:
    """The whole body, within the size cap and the body deadline."""
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            return await request.read()
    except ConnectionError:
        # Gone mid-body. Let through, aiohttp logs it as an error, traceback and all.
        raise ClientLeft from None
    except TimeoutError:
        # Else a client announcing a body it never sends holds its connection forever.
        raise BodyTimeout(
            f"the request body did not arrive within {settings.body_timeout_s:g} s"
        ) from None
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(
            f"the request body is over the {settings.max_message_bytes}-byte limit"
        ) from None


def _authorized_request(request: web.Request, body: bytes, settings: Settings) -> ExecuteRequest:
    """Parse the body; with tokens configured, a bearer header or `token` field is required."""
    bearer_ok = not settings.tokens or token_is_valid(bearer_token(request), settings.tokens)
    try:
        parsed = parse_execute_request(body)
    except BadMessage:
        if not bearer_ok:  # tell an unauthorized client nothing about the body
            raise Unauthorized("a valid token is required", field="token") from None
        raise
    if not bearer_ok and not token_is_valid(parsed.token, settings.tokens):
        raise Unauthorized("a valid token is required", field="token")
    return parsed


async def _run_admitted(admission: Admission, run: Run, client_key: str, *, wait_s: float) -> None:
    """Wait at most `wait_s` for a slot (else `Busy`), then run to the end."""
    try:
        async with asyncio.timeout(wait_s) as deadline:
            async with admission.slot(client_key, on_queued=_stay_quiet):
                deadline.reschedule(None)
                await run.execute()
    except TimeoutError:
        if not deadline.expired():
            raise
        raise Busy(f"no run slot came free within {wait_s:g} s; try again later") from None
    finally:
        run.mark_ended()


async def _stay_quiet(position: int) -> None:
    """A REST client is not told its place in line."""


async def _outcome(task: asyncio.Task[None], client: BatchClient, request: web.Request) -> Exit:
    """The run's `exit` as soon as it is known; a client that left takes its run along."""
    ended = asyncio.ensure_future(client.ended.wait())
    left = asyncio.ensure_future(_client_left(request))
    try:
        done, _ = await asyncio.wait([task, ended, left], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # a server with `handler_cancellation` on
        task.cancel()
        raise
    finally:
        ended.cancel()
        left.cancel()
    if client.exit is not None:
        return client.exit  # the container is removed in the background
    if left in done and not task.done():
        task.cancel()  # the run logs and counts itself killed: "the client went away"
        raise ClientLeft
    if task.cancelled():
        raise Busy("the server is shutting down; try again later")
    task.result()  # raises what kept the run from starting (`Busy`)
    raise CeError("the run ended without an exit; the server logged it")


async def _client_left(request: web.Request) -> None:
    """Return once the request's connection is lost.

    aiohttp does not cancel a handler whose client left (unless the server
    enables `handler_cancellation`, which `web.run_app` does not by default),
    and once the body is read nothing the handler can await hears of it: the
    only sign is the protocol dropping its transport, so poll for that.
    """
    while (transport := request.transport) is not None and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(_CONNECTION_CHECK_S)


async def end_batch_runs(app: web.Application) -> None:
    """At shutdown, end every REST run: started ones answer `error`, queued ones 503."""
    for run, task in list(app[BATCH_RUNS].items()):
        if run.state is RunState.PENDING:
            task.cancel()
        elif run.state is not RunState.ENDED:
            await run.abort("the server is shutting down")


# -- the other endpoints --------------------------------------------------------


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


async def metrics(request: web.Request) -> web.Response:
    """`GET /metrics`: Prometheus text format."""
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`: 200 when a run would start now, else 503 with the reason."""
    app = request.app
    reason = await _not_ready_because(app)
    admission = app[ADMISSION]
    pool = app.get(POOL)
    body = Readiness(
        ready=reason is None,
        reason=reason,
        active_runs=admission.active,
        queued_runs=admission.queued,
        max_runs=app[SETTINGS].capacity.max_runs,
        pool_idle=pool.size if pool else None,
        pool_hits=pool.stats.hits if pool else None,
        pool_misses=pool.stats.misses if pool else None,
    )
    return json_response(body, HTTPStatus.OK if reason is None else HTTPStatus.SERVICE_UNAVAILABLE)


async def _not_ready_because(app: web.Application) -> str | None:
    image = app[SETTINGS].sandbox.image
    try:
        await app[ENGINE].version()
        labels = await app[ENGINE].image_labels(image)
    except SandboxError as exc:
        return exc.message
    if labels is None:
        return f"the runtime image {image} is absent; build it with `python -m ce_ws image`"
    wanted = await asyncio.to_thread(recipe_hash)
    if labels.get(RECIPE_LABEL) != wanted:
        return f"the runtime image {image} is out of date; rebuild it with `python -m ce_ws image`"
    if not app[ADMISSION].has_room():
        return "every run slot is taken"
    return None
