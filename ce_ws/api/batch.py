"""Running a program to its end for a batch surface: REST, and each compatibility API.

A batch surface parses its own request into a `RunRequest`, then calls
`run_to_end`: the run starts through the Runner with a `BatchCollector` as
its owner, and the surface gets the `ExecuteResponse` to translate into its
own answer. A client that closes its connection takes its run along.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from ce_ws.api.appkeys import IDENTITY, REFUSALS, RUNNER, SETTINGS
from ce_ws.api.auth import bearer_token
from ce_ws.api.jsonstream import PIECE, stream_json
from ce_ws.config import Settings
from ce_ws.errors import BodyTimeout, BodyTooLarge, CeError
from ce_ws.languages import Language
from ce_ws.protocol import (
    CompileResult,
    ExecuteResponse,
    Exit,
    RunRequest,
    ServerMessage,
    Stage,
    Status,
)
from ce_ws.runs.run import Terminal
from ce_ws.runs.runner import Client, RunHandle
from ce_ws.telemetry import Via
from ce_ws.types import COMPILER, STDERR, STDOUT, StreamId

log = logging.getLogger(__name__)

#: A surface's handling of one request: the answer's status and JSON-ready body.
Handle = Callable[[web.Request, Client], Awaitable[tuple[HTTPStatus, dict[str, Any]]]]
#: A surface's refusal in its own shape.
Refuse = Callable[[CeError], web.Response]

#: How often a waiting `execute` checks that its client is still connected.
_CONNECTION_CHECK_S = 0.25
#: nginx's "client closed request": only the access log ever sees it.
CLIENT_CLOSED_REQUEST = 499


class ClientLeft(Exception):
    """The client closed its connection before its answer: nobody to answer."""


class _Text:
    """Text that grows at its end, kept in pieces of about `PIECE` characters.

    A string per chunk could cost more than the text (a program writing a
    byte at a time makes a chunk of each); one growing string would be copied
    whole at every chunk.
    """

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._recent: list[str] = []
        self._recent_chars = 0

    def append(self, text: str) -> None:
        self._recent.append(text)
        self._recent_chars += len(text)
        if self._recent_chars >= PIECE:
            self._pieces.append("".join(self._recent))
            self._recent.clear()
            self._recent_chars = 0

    def value(self) -> str:
        """The whole text (one copy: a few milliseconds at the largest output cap)."""
        return "".join(self._pieces + self._recent)


class BatchCollector:
    """The REST owner of a run: keeps its output as text (the run's output cap bounds it).

    Each chunk is decoded as it comes, so the end of a run has no large
    decoding to do; a character split between two chunks of one stream is
    decoded whole, even when the other stream's output comes between them.
    """

    def __init__(self) -> None:
        self._compiled = False
        streams = (STDOUT, STDERR, COMPILER)
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in streams}
        self._texts = {stream: _Text() for stream in streams}
        self._interleaved = _Text()  # stdout and stderr in arrival order

    async def send(self, message: ServerMessage) -> None:
        if isinstance(message, Stage) and message.stage == "compile":
            self._compiled = True

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        key = stream if stream in self._texts else STDOUT
        self._append(key, self._decoders[key].decode(data))

    def _append(self, key: StreamId, text: str) -> None:
        self._texts[key].append(text)
        if key != COMPILER:
            self._interleaved.append(text)

    def _finish(self) -> None:
        """Decode what is left: a character cut short at the end."""
        for key, decoder in self._decoders.items():
            self._append(key, decoder.decode(b"", final=True))

    def _compile_result(self, exit_message: Exit) -> CompileResult | None:
        if not self._compiled:
            return None
        output = self._texts[COMPILER].value()
        if exit_message.stage == "compile":
            return CompileResult(
                status=exit_message.status, exit_code=exit_message.exit_code, output=output
            )
        return CompileResult(status=Status.EXITED, exit_code=0, output=output)

    def response(self, exit_message: Exit, language: Language) -> ExecuteResponse:
        """The body of a run that ended; called once, after its `exit`."""
        self._finish()
        return ExecuteResponse(
            run_id=exit_message.run_id,
            language=language.name,
            version=language.version,
            status=exit_message.status,
            exit_code=exit_message.exit_code,
            signal=exit_message.signal,
            stdout=self._texts[STDOUT].value(),
            stderr=self._texts[STDERR].value(),
            output=self._interleaved.value(),
            wall_ms=exit_message.wall_ms,
            cpu_ms=exit_message.cpu_ms,
            memory_peak_bytes=exit_message.memory_peak_bytes,
            output_bytes=exit_message.output_bytes,
            truncated=exit_message.truncated,
            limit=exit_message.limit,
            compile=self._compile_result(exit_message),
            message=exit_message.message,
            id=exit_message.id,
        )


async def run_to_end(
    request: web.Request, run_request: RunRequest, client: Client
) -> ExecuteResponse:
    """Run `run_request` without a terminal and collect what it printed.

    Raises the `CeError` that refuses it, or `ClientLeft`.
    """
    collector = BatchCollector()
    handle = await request.app[RUNNER].start(
        run_request,
        owner=collector,
        client=client,
        terminal=Terminal(tty=False),
        queue_wait_s=request.app[SETTINGS].capacity.rest_queue_wait_s,
    )
    return collector.response(await _outcome(handle, request), handle.language)


async def _outcome(handle: RunHandle, request: web.Request) -> Exit:
    """The run's `exit` as soon as it is decided; a client that left takes its run along."""
    outcome = asyncio.ensure_future(handle.outcome())
    left = asyncio.ensure_future(_client_left(request))
    try:
        await asyncio.wait([outcome, left], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # a server with `handler_cancellation` on
        await handle.cancel()
        raise
    finally:
        left.cancel()
    if not outcome.done():
        outcome.cancel()
        await handle.cancel()  # the run logs and counts itself killed: "the client went away"
        raise ClientLeft
    return outcome.result()


async def _client_left(request: web.Request) -> None:
    """Return once the request's connection is lost.

    aiohttp does not cancel a handler whose client left (unless the server
    enables `handler_cancellation`, which `web.run_app` does not by default),
    and once the body is read nothing the handler can await hears of it: the
    only sign is the protocol dropping its transport, so poll for that.
    """
    while (transport := request.transport) is not None and not transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(_CONNECTION_CHECK_S)


async def read_body(request: web.Request, settings: Settings) -> bytes:
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


async def answer_batch(
    request: web.Request, *, via: Via, handle: Handle, refuse: Refuse
) -> web.StreamResponse:
    """Answer one batch request of a surface: its body in pieces, or its refusal.

    Every refusal spends the client's refusal budget; a client that left gets
    nothing (499 in the access log only).
    """
    bearer = bearer_token(request)
    client = Client(
        key=request.app[IDENTITY].client_key(request),
        via=via,
        credentials=(bearer,) if bearer else (),
    )
    try:
        status, body = await handle(request, client)
    except ClientLeft:
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    except CeError as exc:
        request.app[REFUSALS].spend(client.key)
        log.info("%s refused %s: %s", via, exc.code, exc.message)
        return refuse(exc)
    return await stream_json(request, body, status)  # up to the output cap, in pieces
