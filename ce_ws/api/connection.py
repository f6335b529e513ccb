"""One WebSocket connection: parse each frame, dispatch it, one run at a time.

Beside its run, a connection may have one `prepare` under way (a compile
ahead of the run, answered by `prepared` whenever it ends).

An adapter over the Runner: it sees the socket and a `RunHandle`, never
Docker. The receive loop is the only place the socket is read.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
from typing import Literal, assert_never

from aiohttp import WSMessage, WSMsgType, web

from ce_ws import __version__
from ce_ws.api.auth import authorized
from ce_ws.api.direct_frames import writable_transport, write_frame
from ce_ws.api.messages import send_message
from ce_ws.api.remote_watch import RemoteRooms
from ce_ws.api.sharing import Sharing
from ce_ws.api.socket_delivery import tcp_delivery
from ce_ws.config import Settings
from ce_ws.errors import AlreadyRunning, CeError, NotRunning, RateLimited, Unauthorized
from ce_ws.languages import LanguageTable
from ce_ws.protocol import (
    AckMessage,
    ClientMessage,
    CloseCode,
    CodeMessage,
    EofMessage,
    ErrorMessage,
    Exit,
    Hello,
    KillMessage,
    LimitsInfo,
    Output,
    OutputStream,
    PingMessage,
    Pong,
    Prepared,
    PrepareMessage,
    ResizeMessage,
    RunMessage,
    RunRequest,
    ServerMessage,
    ShareMessage,
    SignalMessage,
    StdinMessage,
    UnshareMessage,
    UnwatchMessage,
    WatchMessage,
    error_message,
    message_id,
    parse_client_message,
)
from ce_ws.recordings.store import RecordingStore
from ce_ws.rooms.registry import RoomRegistry
from ce_ws.runs.admission import TokenBucket, control_budget
from ce_ws.runs.fanout import Delivery
from ce_ws.runs.run import Terminal
from ce_ws.runs.runner import Client, RunHandle, Runner
from ce_ws.runs.tee import Tee
from ce_ws.types import STDOUT, StreamId

log = logging.getLogger(__name__)

_STREAM_NAMES: dict[OutputStream, Literal["stdout", "stderr", "compile"]] = {
    OutputStream.STDOUT: "stdout",
    OutputStream.STDERR: "stderr",
    OutputStream.COMPILE: "compile",
}


def hello_message(
    settings: Settings, languages: LanguageTable, credentials: tuple[str, ...] = ()
) -> Hello:
    """The greeting sent on connect: the limits of terminal runs, which this socket starts.

    `credentials` decide which network policies it lists.
    """
    defaults, maxima = settings.run_limits(terminal=True)
    return Hello(
        network=[
            name for name, policy in settings.network.policies.items() if policy.allows(credentials)
        ],
        server="code-executor",
        version=__version__,
        languages=[language.name for language in languages],
        limits=LimitsInfo(defaults=defaults.model_dump(), maxima=maxima.model_dump()),
    )


class SocketClient:
    """The socket as a run's owner: control messages as text, output as bytes or text.

    With a TTY the terminal has merged stdout and stderr already. Without one
    each stream stays apart: a binary frame starts with its `OutputStream`
    byte, a text `output` names its `stream` (one decoder per stream, so a
    character split across chunks of one stream is never garbled).
    """

    def __init__(self, ws: web.WebSocketResponse, *, text_output: bool, tty: bool = True) -> None:
        self._ws = ws
        self._text_output = text_output
        self._tty = tty
        self._decoders: dict[StreamId, codecs.IncrementalDecoder] = {}

    async def send(self, message: ServerMessage) -> None:
        for frame in self._message_frames(message):
            await self._deliver(frame)

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        for frame in self._output_frames(data, stream):
            await self._deliver(frame)

    def delivery(self) -> Delivery:
        """As a room's viewer: whether the peer still takes what it was sent."""
        return tcp_delivery(self._ws.get_extra_info("socket"))

    def send_now(self, message: ServerMessage) -> bool:
        """As a room's viewer: written at once unless the socket's transport is paused."""
        if (transport := writable_transport(self._ws)) is None:
            return self._ws.closed  # a closing socket drops it, as `send` would
        for frame in self._message_frames(message):
            write_frame(transport, frame)
        return True

    def send_output_now(self, data: bytes, stream: StreamId) -> bool:
        """As a room's viewer: written at once unless the socket's transport is paused."""
        if (transport := writable_transport(self._ws)) is None:
            return self._ws.closed
        for frame in self._output_frames(data, stream):
            write_frame(transport, frame)
        return True

    def _message_frames(self, message: ServerMessage) -> list[str | bytes]:
        frames: list[str | bytes] = []
        if isinstance(message, Exit):
            for stream, decoder in self._decoders.items():
                frames += self._text_frames(decoder.decode(b"", final=True), stream)
        frames.append(message.to_json())
        return frames

    def _output_frames(self, data: bytes, stream: StreamId) -> list[str | bytes]:
        if self._text_output:
            return self._text_frames(self._decoder(stream).decode(data), stream)
        if self._tty:
            return [data]
        return [bytes([stream]) + data]

    def _decoder(self, stream: StreamId) -> codecs.IncrementalDecoder:
        key = STDOUT if self._tty else stream
        if key not in self._decoders:
            self._decoders[key] = codecs.getincrementaldecoder("utf-8")("replace")
        return self._decoders[key]

    def _text_frames(self, text: str, stream: StreamId) -> list[str | bytes]:
        if not text:
            return []
        name = None if self._tty else _STREAM_NAMES[OutputStream(stream)]
        return [Output(data=text, stream=name).to_json()]

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
        client: Client,
        authorized: bool,
        settings: Settings,
        languages: LanguageTable,
        runner: Runner,
        rooms: RoomRegistry,
        recordings: RecordingStore,
        base_url: str,
        remote_rooms: RemoteRooms | None = None,
        address: str = "",
    ) -> None:
        """`remote_rooms` and the client's `address` serve viewers of rooms other replicas hold."""
        self._ws = ws
        self._client = client
        self._authorized = authorized
        self._settings = settings
        self._languages = languages
        self._runner = runner
        self._recordings = recordings
        self._refusals = TokenBucket(settings.capacity.refusals_per_minute)
        self._control_budget = control_budget(settings.capacity)
        self._run: RunHandle | None = None
        self._tee: Tee | None = None
        self._preparing: asyncio.Task[None] | None = None
        self._sharing = Sharing(
            ws,
            client_key=client.key,
            rooms=rooms,
            settings=settings,
            watch_base=base_url,
            viewer_sink=SocketClient(ws, text_output=False),
            remote=remote_rooms,
            address=address,
        )

    async def serve(self) -> None:
        """The receive loop: the only place this socket is read."""
        await self._send(hello_message(self._settings, self._languages, self._client.credentials))
        try:
            if not await self._on_frame(await self._first_frame()):
                return
            async for frame in self._ws:
                if not await self._on_frame(frame):
                    break
        finally:
            await self._stop_run()
            await self._stop_prepare()
            await self._sharing.aclose()

    async def going_away(self) -> None:
        """Server shutdown (runs already ended by the Runner): close 1001."""
        await self._ws.close(code=CloseCode.GOING_AWAY, message=b"server shutdown")

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
            await self._on_keys(frame.data)
        else:
            return False
        return True

    async def _on_text(self, text: str) -> None:
        try:
            message = parse_client_message(text)
        except CeError as exc:
            await self._refuse(exc, message_id=message_id(text))
            return
        try:
            await self._dispatch(message)
        except CeError as exc:
            await self._refuse(exc, message_id=_id_of(message))
        except Exception:
            # A bug must not take the connection (or the server) down with it.
            log.exception("internal error while handling a %s message", type(message).__name__)
            await self._send_error(CeError("internal error; the server logged it"), _id_of(message))

    async def _on_keys(self, data: bytes) -> None:
        """A binary frame: keystrokes for the active run."""
        try:
            self._sharing.check_may_act()
            await self._active_run().feed_stdin(data)
        except CeError as exc:
            await self._refuse(exc)

    async def _dispatch(self, message: ClientMessage) -> None:
        """One parsed message to its handler; mypy checks every type is handled."""
        if isinstance(message, _ACTING):
            self._sharing.check_may_act()
        match message:
            case RunMessage():
                await self._start_run(message)
            case StdinMessage():
                await self._active_run().feed_stdin(message.data.encode())
            case EofMessage():
                await self._active_run().end_input()
            case ResizeMessage():
                run = self._active_run()
                self._spend_control()
                run.resize(message.cols, message.rows)
                if self._tee is not None:
                    self._tee.resize(message.cols, message.rows)
            case SignalMessage():
                run = self._active_run()
                if message.signal != "SIGKILL":  # a kill, however sent, is never refused
                    self._spend_control()
                await run.signal(message.signal)
            case KillMessage():
                await self._active_run().kill()
            case AckMessage():
                self._active_run().ack(message.bytes)
            case PingMessage():
                self._spend_control()
                await self._send(Pong())
            case ShareMessage():
                await self._sharing.share(message)
            case CodeMessage():
                self._spend_control()
                await self._sharing.code(message)
            case UnshareMessage():
                await self._sharing.unshare()
            case WatchMessage():
                if self._run is not None and not self._run.ended:
                    raise AlreadyRunning("a run is active on this connection; end it first")
                await self._sharing.watch(message)
            case UnwatchMessage():
                await self._sharing.unwatch()
            case PrepareMessage():
                await self._start_prepare(message)
            case _:
                assert_never(message)

    async def _send(self, message: ServerMessage) -> None:
        await send_message(self._ws, message)

    async def _send_error(self, exc: CeError, message_id: str | int | None = None) -> None:
        log.info("refused %s: %s", exc.code, exc.message)
        await self._send(error_message(exc, message_id))

    async def _refuse(self, exc: CeError, *, message_id: str | int | None = None) -> None:
        """The client's message was refused; called only from the receive loop.

        Each refusal spends a token: a client that keeps sending what it is
        told is wrong ends up closed with 1008 (its run ends first).
        """
        await self._send_error(exc, message_id)
        if not self._refusals.take():
            log.info("too many refused messages; closing")
            await self._stop_run()
            await self._ws.close(code=CloseCode.POLICY, message=b"too many refused messages")

    def _active_run(self) -> RunHandle:
        if self._run is None or self._run.ended:
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

    async def _start_run(self, message: RunMessage) -> None:
        if self._run is not None and not self._run.ended:
            refusal: CeError = AlreadyRunning("a run is already active on this connection")
            self._runner.refused(self._client, refusal)
            raise refusal
        if not await self._authorize(message):
            return
        self._end_tee()
        tee = self._tee_for(message)
        if message.tty is not None:
            tee.resize(message.tty.cols, message.tty.rows)
        # The previous run may still be removing its container: the Runner
        # tracks it until it is gone.
        self._run = await self._runner.start(
            message,
            owner=tee,
            client=self._client,
            terminal=_terminal(message),
        )
        self._tee = tee

    async def _authorize(self, message: RunRequest) -> bool:
        """A run's or prepare's token; a wrong one closes the socket (1008): no guessing."""
        if not authorized(self._settings.tokens, message.token) and not self._authorized:
            refusal = Unauthorized("a valid token is required", field="token")
            self._runner.refused(self._client, refusal)
            await self._send_error(refusal, message.id)
            await self._ws.close(code=CloseCode.POLICY, message=b"unauthorized")
            return False
        self._authorized = True
        return True

    async def _start_prepare(self, message: PrepareMessage) -> None:
        if not await self._authorize(message):
            return
        if self._preparing is not None and not self._preparing.done():
            # Not cancelled: a flood of prepares must not churn boxes. The
            # client sends its newest files again once this one is answered.
            raise AlreadyRunning("a prepare is under way; send it again once it is answered")
        self._preparing = asyncio.create_task(self._prepare(message))

    async def _prepare(self, message: PrepareMessage) -> None:
        """Compile ahead; always answered (`prepared`, or an `error` with its `id`)."""
        try:
            answer: Prepared | ErrorMessage = await self._runner.prepare(
                message, client=self._client
            )
        except CeError as exc:
            answer = error_message(exc, message.id)
        except Exception:
            log.exception("internal error while compiling ahead")
            answer = error_message(CeError("internal error; the server logged it"), message.id)
        with contextlib.suppress(ConnectionError):
            await self._send(answer)

    async def _stop_prepare(self) -> None:
        """The client left: its compile ahead is of no use to anyone."""
        if self._preparing is not None:
            self._preparing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._preparing

    def _tee_for(self, message: RunMessage) -> Tee:
        """The run's owner (this socket) with its taps: the room shared, a recorder."""
        owner = SocketClient(
            self._ws, text_output=message.output == "text", tty=message.tty is not None
        )
        taps = self._sharing.taps()
        record = message.record if message.record is not None else self._sharing.presenting
        if not record:
            return Tee(owner, taps, recording=None)
        recorder, url = self._recordings.recorder()
        return Tee(owner, [*taps, recorder], recording=url)

    async def _stop_run(self) -> None:
        """The client left (or is closed): end its run now."""
        if self._run is not None:
            await self._run.cancel()
        self._end_tee()

    def _end_tee(self) -> None:
        """The last run's taps hear it is over (its `exit`, if they missed it)."""
        if self._tee is not None and self._run is not None:
            self._tee.ended(self._run.exit)
            self._tee = None


#: What a watching connection may not send: it would run, type or signal.
_ACTING = (
    RunMessage, StdinMessage, EofMessage, ResizeMessage, SignalMessage, KillMessage, AckMessage,
    PrepareMessage,
)  # fmt: skip


def _terminal(message: RunMessage) -> Terminal:
    """The run's terminal; without a TTY, stdin stays open until `eof`."""
    if message.tty is None:
        return Terminal(tty=False, open_input=True, flow_control=message.flow_control)
    return Terminal(cols=message.tty.cols, rows=message.tty.rows, flow_control=message.flow_control)


def _id_of(message: ClientMessage) -> str | int | None:
    """The `id` an `error` refusing `message` echoes (runs and prepares have one)."""
    return message.id if isinstance(message, RunRequest) else None
