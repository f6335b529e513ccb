"""The batch REST API (contract §2): `POST /api/v1/execute`, an adapter over the Runner.

The handler parses and authorizes the body, starts the run with a
`BatchCollector` as its owner, and answers with what the run sent.
"""

from __future__ import annotations

import asyncio
import codecs
import logging

from aiohttp import web

from ce_ws.api.appkeys import RUNNER, SETTINGS
from ce_ws.api.auth import authorized, bearer_token
from ce_ws.api.guards import require_json, require_own_origin
from ce_ws.api.http import error_response, json_response
from ce_ws.config import Settings
from ce_ws.errors import BadMessage, BodyTooLarge, CeError, Unauthorized
from ce_ws.languages import Language
from ce_ws.protocol import (
    CompileResult,
    ExecuteRequest,
    ExecuteResponse,
    Exit,
    ServerMessage,
    Stage,
    Status,
    parse_execute_request,
)
from ce_ws.runs.run import Terminal
from ce_ws.runs.runner import Client, RunHandle
from ce_ws.types import COMPILER, STDERR, STDOUT, StreamId

log = logging.getLogger(__name__)


class BatchCollector:
    """The REST owner of a run: keeps its output (the run's output cap bounds it)."""

    def __init__(self) -> None:
        self._compiled = False
        self._compiler = bytearray()
        self._chunks: list[tuple[StreamId, bytes]] = []

    async def send(self, message: ServerMessage) -> None:
        if isinstance(message, Stage) and message.stage == "compile":
            self._compiled = True

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

    def response(self, exit_message: Exit, language: Language) -> ExecuteResponse:
        """The body of a run that ended; called once, after its `exit`."""
        stdout, stderr, output = self._texts()
        return ExecuteResponse(
            run_id=exit_message.run_id,
            language=language.name,
            version=language.version,
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


async def execute(request: web.Request) -> web.Response:
    """`POST /api/v1/execute`: run a program to its end; a refusal is a 4xx/5xx body."""
    client = Client(key=request.remote or "unknown", via="rest")
    runner, settings = request.app[RUNNER], request.app[SETTINGS]
    try:
        require_own_origin(request)  # before the body is read: a page elsewhere gets nothing run
        require_json(request)
        body = _authorized_request(request, await _read_body(request, settings), settings)
    except CeError as exc:
        runner.refused(client, exc)
        return _refusal(exc)
    collector = BatchCollector()
    try:
        handle = runner.start(
            body,
            owner=collector,
            client=client,
            terminal=Terminal(tty=False),
            queue_wait_s=settings.capacity.rest_queue_wait_s,
        )
        exit_message = await _outcome(handle)
    except CeError as exc:
        return _refusal(exc)
    return json_response(collector.response(exit_message, handle.language))


async def _outcome(handle: RunHandle) -> Exit:
    """The run's `exit`; a request cancelled while waiting ends the run."""
    try:
        return await handle.outcome()
    except asyncio.CancelledError:
        await handle.cancel()
        raise


def _refusal(error: CeError) -> web.Response:
    log.info("refused %s: %s", error.code, error.message)
    return error_response(error)


async def _read_body(request: web.Request, settings: Settings) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(
            f"the request body is over the {settings.max_message_bytes}-byte limit"
        ) from None


def _authorized_request(request: web.Request, body: bytes, settings: Settings) -> ExecuteRequest:
    """Parse the body; with tokens configured, a bearer header or `token` field is required."""
    bearer = bearer_token(request)
    try:
        parsed = parse_execute_request(body)
    except BadMessage:
        if not authorized(settings.tokens, bearer):  # tell an unauthorized client nothing
            raise Unauthorized("a valid token is required", field="token") from None
        raise
    if not authorized(settings.tokens, bearer, parsed.token):
        raise Unauthorized("a valid token is required", field="token")
    return parsed
