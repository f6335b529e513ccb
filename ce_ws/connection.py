"""One WebSocket connection: parse each frame, dispatch it, run one run at a time.

Web layer: it sees the socket and the session's `Run`, never Docker.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMessage, WSMsgType, web

from ce_ws import __version__
from ce_ws.admission import Admission, RateLimiter, TokenBucket
from ce_ws.auth import token_is_valid
from ce_ws.config import Settings
from ce_ws.errors import AlreadyRunning, CeError, NotRunning, RateLimited, Unauthorized
from ce_ws.languages import LanguageTable
from ce_ws.plan import plan_run
from ce_ws.protocol import (
    AckMessage,
    CloseCode,
    EofMessage,
    ErrorMessage,
    Exit,
    Hello,
    KillMessage,
    LimitsInfo,
    Output,
    PingMessage,
    Pong,
    Queued,
    ResizeMessage,
    RunMessage,
    ServerMessage,
    SignalMessage,
    StdinMessage,
    parse_client_message,
)
from ce_ws.session import Run, RunState, Sandbox, Terminal
from ce_ws.telemetry import ClientTelemetry
from ce_ws.types import StreamId

log = logging.getLogger(__name__)

_STOP_TIMEOUT_S = 10.0


def hello_message(settings: Settings, languages: LanguageTable) -> Hello:
    """The greeting sent on connect."""
    return Hello(
        server="code-executor",
        version=__version__,
        languages=[language.name for language in languages],
        limits=LimitsInfo(
            defaults=settings.defaults.model_dump(), maxima=settings.maxima.model_dump()
        ),
    )


class SocketClient:
    """The socket side of a run: control messages as text, output as bytes or text."""

    def __init__(self, ws: web.WebSocketResponse, *, text_output: bool) -> None:
        self._ws = ws
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace") if text_output else None

    async def send(self, message: ServerMessage) -> None:
        if isinstance(message, Exit) and self._decoder is not None:
            await self._send_text(self._decoder.decode(b"", final=True))
        await self._deliver(message.to_json())

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        # A terminal merges stdout and stderr already; the stream is not needed.
        if self._decoder is None:
            await self._deliver(data)
        else:
            await self._send_text(self._decoder.decode(data))

    async def _send_text(self, text: str) -> None:
        if text:
            await self._deliver(Output(data=text).to_json())

    async def _deliver(self, frame: str | bytes) -> None:
        # A socket that is closing drops what the run still sends: the
        # connection ends the run itself once the close is through.
        if self._ws.closed:
            return
        with contextlib.suppress(ConnectionResetError):
            if isinstance(frame, str):
                await self._ws.send_str(frame)
            else:
                await self._ws.send_bytes(frame)


class Connection:
    """Serves one WebSocket until it closes; at most one run at a time."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        client_key: str,
        authorized: bool,
        settings: Settings,
        languages: LanguageTable,
        sandbox: Sandbox,
        admission: Admission,
        rate_limiter: RateLimiter,
        run_tasks: set[asyncio.Task[None]],
        telemetry: ClientTelemetry,
    ) -> None:
        self._ws = ws
        self._client_key = client_key
        self._authorized = authorized
        self._settings = settings
        self._languages = languages
        self._sandbox = sandbox
        self._admission = admission
        self._rate_limiter = rate_limiter
        self._run_tasks = run_tasks
        self._telemetry = telemetry
        self._refusals = TokenBucket(settings.capacity.refusals_per_minute)
        self._control_budget = TokenBucket(
            settings.capacity.controls_per_second * 60, burst=settings.capacity.controls_burst
        )
        self._run: Run | None = None
        self._run_task: asyncio.Task[Any] | None = None
        self._handlers: dict[type[Any], Callable[[Any], Awaitable[None]]] = {
            RunMessage: self._on_run,
            StdinMessage: self._on_stdin,
            EofMessage: self._on_eof,
            ResizeMessage: self._on_resize,
            SignalMessage: self._on_signal,
            KillMessage: self._on_kill,
            AckMessage: self._on_ack,
            PingMessage: self._on_ping,
        }

    async def serve(self) -> None:
        """The receive loop: the only place this socket is read."""
        await self._send(hello_message(self._settings, self._languages))
        try:
            if not await self._on_frame(await self._first_frame()):
                return
            async for frame in self._ws:
                if not await self._on_frame(frame):
                    break
        finally:
            await self._stop_run()

    async def _first_frame(self) -> WSMessage | None:
        """The first frame, or None (socket closed 1008) if none came in time."""
        try:
            return await self._ws.receive(timeout=self._settings.first_message_s)
        except TimeoutError:
            log.info("no message within %s s; closing", self._settings.first_message_s)
            await self._ws.close(code=CloseCode.POLICY, message=b"no message in time")
            return None

    async def _on_frame(self, frame: WSMessage | None) -> bool:
        """Handle one frame; False when the socket is closing."""
        if frame is None:
            return False
        if frame.type is WSMsgType.TEXT:
            await self._on_text(frame.data)
        elif frame.type is WSMsgType.BINARY:
            await self._guarded(self._on_stdin_bytes(frame.data))
        else:
            return False
        return True

    async def _on_text(self, text: str) -> None:
        try:
            message = parse_client_message(text)
        except CeError as exc:
            await self._refuse(exc)
            return
        await self._guarded(self._handlers[type(message)](message))

    async def _guarded(self, work: Awaitable[None]) -> None:
        try:
            await work
        except CeError as exc:
            await self._refuse(exc)
        except Exception:
            # A bug must not take the connection (or the server) down with it.
            log.exception("internal error while handling a message")
            await self._send_error(CeError("internal error; the server logged it"))

    async def _send(self, message: ServerMessage) -> None:
        if not self._ws.closed:
            await self._ws.send_str(message.to_json())

    async def _send_error(self, exc: CeError) -> None:
        log.info("refused %s: %s", exc.code, exc.message)
        await self._send(ErrorMessage(code=exc.code, message=exc.message, field=exc.field))

    async def _refuse(self, exc: CeError) -> None:
        """The client's message was refused; called only from the receive loop.

        Each refusal spends a token: a client that keeps sending what it is
        told is wrong ends up closed with 1008 (its run ends first).
        """
        await self._send_error(exc)
        if not self._refusals.take():
            log.info("too many refused messages; closing")
            await self._stop_run()
            await self._ws.close(code=CloseCode.POLICY, message=b"too many refused messages")

    def _active_run(self) -> Run:
        if self._run is None or self._run.state is RunState.ENDED:
            raise NotRunning("no run is active; send a run message first")
        return self._run

    def _spend_control(self) -> None:
        """`signal`, `resize` and `ping` share one budget per connection (so per run).

        Past it each is refused, which spends a refusal too: a client that
        keeps flooding is closed 1008.
        """
        if not self._control_budget.take():
            rate = self._settings.capacity.controls_per_second
            raise RateLimited(f"more than {rate} control messages a second; slow down")

    # -- handlers, one per message type ------------------------------------

    async def _on_run(self, message: RunMessage) -> None:
        try:
            await self._start_run(message)
        except CeError as exc:
            self._telemetry.refused(exc)
            raise

    async def _start_run(self, message: RunMessage) -> None:
        if self._run is not None and self._run.state is not RunState.ENDED:
            raise AlreadyRunning("a run is already active on this connection")
        if not self._authorized and not token_is_valid(message.token, self._settings.tokens):
            refusal = Unauthorized("a valid token is required", field="token")
            self._telemetry.refused(refusal)
            await self._send_error(refusal)
            await self._ws.close(code=CloseCode.POLICY, message=b"unauthorized")
            return
        self._authorized = True
        plan = plan_run(message, languages=self._languages, settings=self._settings)
        self._rate_limiter.check(self._client_key)
        terminal = Terminal(
            tty=True,
            cols=message.tty.cols,
            rows=message.tty.rows,
            flow_control=message.flow_control,
        )
        client = SocketClient(self._ws, text_output=message.output == "text")
        run = Run(
            plan,
            sandbox=self._sandbox,
            settings=self._settings,
            client=client,
            terminal=terminal,
            observer=self._telemetry.run(plan.language.name),
        )
        self._run = run
        # The previous run's task may still be removing its container: it
        # finishes on its own, tracked in the app's run registry.
        task = asyncio.create_task(self._admit_and_run(run))
        self._run_task = task
        self._run_tasks.add(task)
        task.add_done_callback(self._run_tasks.discard)

    async def _admit_and_run(self, run: Run) -> None:
        try:
            async with self._admission.slot(
                self._client_key, on_queued=lambda position: self._send(Queued(position=position))
            ):
                await run.execute()
        except CeError as exc:
            self._telemetry.refused(exc)
            await self._send_error(exc)
        finally:
            run.mark_ended()

    async def _on_stdin(self, message: StdinMessage) -> None:
        await self._active_run().feed_stdin(message.data.encode())

    async def _on_stdin_bytes(self, data: bytes) -> None:
        await self._active_run().feed_stdin(data)

    async def _on_eof(self, _: EofMessage) -> None:
        await self._active_run().end_input()

    async def _on_resize(self, message: ResizeMessage) -> None:
        run = self._active_run()
        self._spend_control()
        run.resize(message.cols, message.rows)

    async def _on_signal(self, message: SignalMessage) -> None:
        run = self._active_run()
        if message.signal != "SIGKILL":  # a kill, however sent, is never refused
            self._spend_control()
        await run.signal(message.signal)

    async def _on_kill(self, _: KillMessage) -> None:
        run = self._active_run()
        if run.state is RunState.PENDING:
            await self._stop_run()  # still queued: it never started
            return
        await run.kill()

    async def _on_ack(self, message: AckMessage) -> None:
        self._active_run().ack(message.bytes)

    async def _on_ping(self, _: PingMessage) -> None:
        self._spend_control()
        await self._send(Pong())

    async def shut_down(self, *, grace_s: float) -> None:
        """Server shutdown: end the run (its `exit` says why), then close 1001."""
        if self._run is not None and self._run.state is not RunState.ENDED:
            await self._run.abort("the server is shutting down")
            if self._run_task is not None:
                await asyncio.wait([self._run_task], timeout=grace_s)
        await self._ws.close(code=CloseCode.GOING_AWAY, message=b"server shutdown")

    async def _stop_run(self) -> None:
        """End the run because the client left (or killed it while queued)."""
        task = self._run_task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await task
