"""`GET /piston/api/v2/connect`: Piston's interactive WebSocket, an adapter over the Runner.

The client sends `init` (an execute job) within its deadline, then `data`
(stdin) and `signal`; it gets `runtime`, `stage`, `data` (stdout, stderr),
an `exit` per stage, then close 4999. Piston's close codes 4000-4005 say
what went wrong. Unlike Piston's, signals are delivered, the program reads
from pipes (no terminal: no echo, stdout and stderr apart), output is
capped, and a client that leaves takes its run along.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
from collections.abc import Awaitable, Callable
from enum import IntEnum
from typing import Any, Literal, get_args

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from ce_ws.api.appkeys import CONNECTIONS, IDENTITY, LANGUAGES, RUNNER, SETTINGS
from ce_ws.api.auth import authorized, bearer_token
from ce_ws.api.client_sockets import client_socket
from ce_ws.api.compat.piston_result import piston_error, stage_end
from ce_ws.api.compat.piston_wire import (
    PistonLanguage,
    PistonModel,
    find_language,
    job_of,
    parse_json,
    run_request,
)
from ce_ws.api.guards import require_own_origin
from ce_ws.config import Settings
from ce_ws.errors import BadMessage, CeError, RateLimited, Unauthorized
from ce_ws.languages import LanguageTable
from ce_ws.protocol import CloseCode, ErrorMessage, Exit, ServerMessage, Stage, Started
from ce_ws.protocol import Signal as DeliveredSignal
from ce_ws.runs.admission import control_budget
from ce_ws.runs.run import Terminal
from ce_ws.runs.runner import Client, RunHandle, Runner
from ce_ws.types import STDERR, STDOUT, StreamId

log = logging.getLogger(__name__)

#: How long the `exit` may take to reach the socket before it is closed 4999 anyway.
_EXIT_SEND_S = 5.0
#: How long closing the socket may take when the handler ends.
_CLOSE_S = 10.0


class PistonClose(IntEnum):
    """Piston's close codes (`api/src/api/v2.js`)."""

    ALREADY_INITIALIZED = 4000
    INIT_TIMEOUT = 4001
    NOTIFIED_ERROR = 4002
    NOT_INITIALIZED = 4003
    STDIN_ONLY = 4004
    INVALID_SIGNAL = 4005
    JOB_COMPLETED = 4999


_REASONS = {
    PistonClose.ALREADY_INITIALIZED: b"Already Initialized",
    PistonClose.INIT_TIMEOUT: b"Initialization Timeout",
    PistonClose.NOTIFIED_ERROR: b"Notified Error",
    PistonClose.NOT_INITIALIZED: b"Not yet initialized",
    PistonClose.STDIN_ONLY: b"Can only write to stdin",
    PistonClose.INVALID_SIGNAL: b"Invalid signal",
    PistonClose.JOB_COMPLETED: b"Job Completed",
}
_REALTIME = ["SIGRTMIN", *(f"SIGRTMIN+{n}" for n in range(1, 16))]
_REALTIME += [*(f"SIGRTMAX-{n}" for n in range(14, 0, -1)), "SIGRTMAX"]
#: Every name Piston accepts (`globals.SIGNALS`); others close 4005.
_STANDARD = (
    "SIGHUP SIGINT SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGKILL SIGUSR1 SIGSEGV"
    " SIGUSR2 SIGPIPE SIGALRM SIGTERM SIGSTKFLT SIGCHLD SIGCONT SIGSTOP SIGTSTP SIGTTIN"
    " SIGTTOU SIGURG SIGXCPU SIGXFSZ SIGVTALRM SIGPROF SIGWINCH SIGIO SIGPWR SIGSYS"
)
PISTON_SIGNALS = frozenset([*_STANDARD.split(" "), *_REALTIME])
#: Those this server delivers (the native contract's); the rest are refused with `error`.
DELIVERED_SIGNALS = frozenset(get_args(DeliveredSignal))


# -- server → client ----------------------------------------------------------


class RuntimeMessage(ServerMessage):
    type: Literal["runtime"] = "runtime"
    language: str
    version: str


class StageMessage(ServerMessage):
    type: Literal["stage"] = "stage"
    stage: Literal["compile", "run"]


class DataMessage(ServerMessage):
    type: Literal["data"] = "data"
    stream: Literal["stdout", "stderr"]
    data: str


class ExitMessage(ServerMessage):
    """Piston's `exit`: `code` and `signal`, plus isolate's `status`, why, and our status."""

    type: Literal["exit"] = "exit"
    stage: Literal["compile", "run"]
    code: int | None
    signal: str | None
    status: str | None = None
    message: str | None = None
    ce_status: str
    omit_if_none = frozenset({"message"})


class ErrorReport(ServerMessage):
    type: Literal["error"] = "error"
    message: str


# -- client → server (checked after the connection's state, as Piston does) ---


class StdinFrame(PistonModel):
    """`{"type": "data", "stream": "stdin", "data": ...}`."""

    data: str


class PistonSocket:
    """The socket as a run's owner: our messages in Piston's words, output decoded per stream.

    The compiler's output (one stream here) goes out as stderr.
    """

    def __init__(self, ws: web.WebSocketResponse, language: PistonLanguage) -> None:
        self._ws = ws
        self._language = language
        self._decoders = {
            s: codecs.getincrementaldecoder("utf-8")("replace") for s in (STDOUT, STDERR)
        }
        self._compiled = False
        #: Set once the `exit` is on its way to the client.
        self.exited = asyncio.Event()

    async def send(self, message: ServerMessage) -> None:
        match message:
            case Started():
                language = self._language.runtime.language
                await self._deliver(RuntimeMessage(language=language, version=message.version))
            case Stage(stage="compile"):
                self._compiled = True
                await self._deliver(StageMessage(stage="compile"))
            case Stage(stage="run"):
                if self._compiled:  # Piston reports a compile stage that succeeded too
                    await self._deliver(
                        ExitMessage(stage="compile", code=0, signal=None, ce_status="exited")
                    )
                await self._deliver(StageMessage(stage="run"))
            case Exit():
                await self._flush()
                await self._deliver(_exit_message(message))
                self.exited.set()
            case ErrorMessage():
                await self._deliver(ErrorReport(message=message.message))
            case _:
                pass  # `queued`: Piston has no word for it

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        key = STDOUT if stream == STDOUT else STDERR
        await self._data(key, self._decoders[key].decode(data))

    async def _flush(self) -> None:
        for key, decoder in self._decoders.items():
            await self._data(key, decoder.decode(b"", final=True))

    async def _data(self, key: StreamId, text: str) -> None:
        if text:
            await self._deliver(
                DataMessage(stream="stdout" if key == STDOUT else "stderr", data=text)
            )

    async def _deliver(self, message: ServerMessage) -> None:
        if not self._ws.closed:
            with contextlib.suppress(ConnectionResetError):
                await self._ws.send_str(message.to_json())


def _exit_message(exit_message: Exit) -> ExitMessage:
    end = stage_end(exit_message.status, exit_message.exit_code, exit_message.signal)
    return ExitMessage(
        stage=exit_message.stage,
        code=end.code,
        signal=end.signal,
        status=end.status,
        message=exit_message.message,
        ce_status=exit_message.status.value,
    )


Handler = Callable[[dict[str, Any]], Awaitable[None]]


class PistonSession:
    """Serves one `/connect` socket: at most one job, then close."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        client: Client,
        bearer: str | None,
        settings: Settings,
        languages: LanguageTable,
        runner: Runner,
    ) -> None:
        self._ws = ws
        self._client = client
        self._bearer = bearer
        self._settings = settings
        self._languages = languages
        self._runner = runner
        self._control_budget = control_budget(settings.capacity)
        self._run: RunHandle | None = None
        self._closer: asyncio.Task[None] | None = None
        self._handlers: dict[str, Handler] = {
            "init": self._init,
            "data": self._stdin,
            "signal": self._signal,
        }

    async def serve(self) -> None:
        """The receive loop: `init` within the deadline, then until the socket closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.piston.init_timeout_s
        try:
            while not self._ws.closed:
                wait = None if self._run else max(0.0, deadline - loop.time())
                try:
                    frame = await self._ws.receive(timeout=wait)
                except TimeoutError:
                    await self._close(PistonClose.INIT_TIMEOUT)
                    break
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._on_message(frame.data)
        finally:
            await self._end()

    async def going_away(self) -> None:
        """Server shutdown (runs already ended by the Runner): close 1001."""
        await self._ws.close(code=CloseCode.GOING_AWAY, message=b"server shutdown")

    async def _on_message(self, text: str | bytes) -> None:
        """One frame: dispatched on its `type`; an unknown type is ignored, as Piston does."""
        try:
            document = parse_json(text)
            kind = document.get("type") if isinstance(document, dict) else None
            handler = self._handlers.get(kind) if isinstance(kind, str) else None
            if handler is not None:
                await handler(document)
        except CeError as exc:
            await self._fail(exc)
        except Exception:
            log.exception("piston: internal error while handling a message")
            await self._fail(CeError("internal error; the server logged it"))

    async def _init(self, document: dict[str, Any]) -> None:
        if self._run is not None:
            await self._close(PistonClose.ALREADY_INITIALIZED)
            return
        try:
            job = job_of(document)
            if not authorized(self._settings.tokens, self._bearer, job.token):
                raise Unauthorized("a valid token is required", field="token")
            language = find_language(self._languages, job.language, job.version)
            asked = run_request(job, language.language, self._settings, stdin=False)
        except CeError as exc:
            self._runner.refused(self._client, exc)
            raise
        owner = PistonSocket(self._ws, language)
        self._run = await self._runner.start(
            asked,
            owner=owner,
            client=self._client,
            terminal=Terminal(tty=False, open_input=True),
        )
        self._closer = asyncio.create_task(self._close_when_done(self._run, owner))

    async def _stdin(self, document: dict[str, Any]) -> None:
        if self._run is None:
            await self._close(PistonClose.NOT_INITIALIZED)
        elif document.get("stream") != "stdin":
            await self._close(PistonClose.STDIN_ONLY)
        elif not self._run.ended:
            await self._run.feed_stdin(_stdin_frame(document).data.encode())

    async def _signal(self, document: dict[str, Any]) -> None:
        name = document.get("signal")
        if self._run is None:
            await self._close(PistonClose.NOT_INITIALIZED)
        elif name not in PISTON_SIGNALS:
            await self._close(PistonClose.INVALID_SIGNAL)
        elif name not in DELIVERED_SIGNALS:
            await self._report(
                f"{name} is not delivered here; use one of {sorted(DELIVERED_SIGNALS)}"
            )
        elif not self._run.ended:
            await self._deliver_signal(self._run, str(name))

    async def _deliver_signal(self, run: RunHandle, name: str) -> None:
        """Signals share the native budget; a kill, however sent, is never refused."""
        if name != "SIGKILL" and not self._control_budget.take():
            rate = self._settings.capacity.controls_per_second
            await self._report(f"more than {rate} signals a second; slow down")
            self._runner.refused(self._client, RateLimited("signals over the control budget"))
            return
        await run.signal(name)

    async def _close_when_done(self, run: RunHandle, owner: PistonSocket) -> None:
        """After the `exit`, close 4999; a run that never started closes 4002 (`error` sent)."""
        try:
            await run.outcome()
        except CeError:
            await self._close(PistonClose.NOTIFIED_ERROR)
            return
        if self._ws.closed:
            return  # a closed socket gets no `exit`: nothing to wait for
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_EXIT_SEND_S):
                await owner.exited.wait()
        await self._close(PistonClose.JOB_COMPLETED)

    async def _report(self, message: str) -> None:
        if not self._ws.closed:
            await self._ws.send_str(ErrorReport(message=message).to_json())

    async def _fail(self, error: CeError) -> None:
        """Piston's way with any error: say it, then close 4002."""
        log.info("piston: refused %s: %s", error.code, error.message)
        await self._report(error.message)
        await self._close(PistonClose.NOTIFIED_ERROR)

    async def _close(self, code: PistonClose) -> None:
        await self._ws.close(code=code, message=_REASONS[code])

    async def _end(self) -> None:
        """The socket is closing: the run ends now (a client that left takes it along)."""
        if self._run is not None:
            await self._run.cancel()
        if self._closer is not None:
            # It may be closing the socket itself: let it finish, bounded.
            await asyncio.wait({self._closer}, timeout=_CLOSE_S)
            self._closer.cancel()


def _stdin_frame(document: dict[str, Any]) -> StdinFrame:
    try:
        return StdinFrame.model_validate(document)
    except ValidationError:
        raise BadMessage("data must be a string", field="data") from None


async def connect(request: web.Request) -> web.StreamResponse:
    """Origin check, upgrade, connection caps, then serve until the socket closes."""
    app = request.app
    settings = app[SETTINGS]
    try:
        require_own_origin(request)
    except CeError as exc:
        return piston_error(exc)
    ws = web.WebSocketResponse(
        max_msg_size=settings.max_message_bytes, heartbeat=settings.heartbeat_s
    )
    await ws.prepare(request)
    if len(app[CONNECTIONS]) >= settings.capacity.max_connections:
        await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"server overloaded")
        return ws
    client = Client(key=request.app[IDENTITY].client_key(request), via="piston")
    async with client_socket(app, client.key) as admitted:
        if not admitted:
            refusal = ErrorReport(message="too many connections from this client")
            await ws.send_str(refusal.to_json())
            await ws.close(code=CloseCode.POLICY, message=b"too many connections from this client")
            return ws
        session = PistonSession(
            ws,
            client=client,
            bearer=bearer_token(request),
            settings=settings,
            languages=app[LANGUAGES],
            runner=app[RUNNER],
        )
        app[CONNECTIONS].add(session)
        try:
            await session.serve()
        finally:
            app[CONNECTIONS].discard(session)
    return ws
