"""One run over the WebSocket: our keys or pipe in, its output out, one `Ending`.

The receive loop is the only reader of the socket. Beside it, in one
TaskGroup, the input reader fills a bounded queue from the `run` on, the
input sender empties it into the socket from `started` on, and the signal
handlers send `resize`, `signal` and `kill`. Whatever stops the run
from our side (Ctrl-\\, a signal to `ce`, our stdout gone) records its
`Ending` first and then sends `kill`; the run's `exit` then ends the loop,
or the socket is closed after `KILL_WAIT_S` if it never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import ValidationError

from ce_ws.cli.outcome import (
    EX_BROKEN_PIPE,
    EX_KILLED,
    Ending,
    lost_ending,
    refusal_ending,
    run_ending,
    signal_exit_code,
)
from ce_ws.cli.output import OutputSink
from ce_ws.cli.settings import KILL_WAIT_S, RESIZE_SETTLE_S
from ce_ws.cli.terminal import raw_terminal, window_size
from ce_ws.protocol import CloseCode, ErrorMessage, Exit

#: Ctrl-\ on a raw terminal: `ce`'s own way out (the program never sees it).
QUIT_KEY = b"\x1c"
_QUIT_WHY = "stopped with Ctrl-\\: the run was killed"
_READ_CHUNK = 64 * 1024
_END_OF_INPUT = b""
_TTY_QUEUE_CHUNKS = 4096
_PIPE_QUEUE_CHUNKS = 4
#: Signals to `ce` that end the run (and `ce`, with 128 + N).
_STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What `ce run` asks the server for."""

    language: str
    code: str
    args: list[str]

    def message(self, tty: tuple[int, int] | None) -> dict[str, Any]:
        """The `run` message; `tty` is (cols, rows), or None for pipes."""
        terminal: dict[str, int] | bool = (
            {"cols": tty[0], "rows": tty[1]} if tty is not None else False
        )
        return {
            "type": "run",
            "language": self.language,
            "code": self.code,
            "args": self.args,
            "tty": terminal,
        }


@dataclass(frozen=True, slots=True)
class _Stop:
    """Why we stopped the run: the exit status (None: the run's own) and the line."""

    code: int | None
    why: str | None


async def read_chunk(fd: int) -> bytes:
    """The next bytes on `fd` (b"" at its end), without blocking the loop.

    A regular file or /dev/null cannot be polled, and is always readable.
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    try:
        loop.add_reader(fd, _resolve, ready)
    except PermissionError:
        return os.read(fd, _READ_CHUNK)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
    return os.read(fd, _READ_CHUNK)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():  # the reader may fire again before the awaiter runs
        future.set_result(None)


class RunSession:
    """Drives one run on an open socket, from `hello` to its `Ending`."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        tty: bool,
        stdin_fd: int = 0,
        stdout_fd: int = 1,
        stderr_fd: int = 2,
    ) -> None:
        self._ws = ws
        self._tty = tty
        self._stdin_fd = stdin_fd
        self._stdout_fd = stdout_fd
        self.output = OutputSink(tty=tty, stdout_fd=stdout_fd, stderr_fd=stderr_fd)
        self._started = False
        # Keys are small and few (and must be read to see a Ctrl-\ while the run
        # waits for a slot); pipe chunks are large: only a few wait.
        self._input: asyncio.Queue[bytes] = asyncio.Queue(
            _TTY_QUEUE_CHUNKS if tty else _PIPE_QUEUE_CHUNKS
        )
        self._stop: _Stop | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._size_sent: tuple[int, int] | None = None
        self._resize_timer: asyncio.TimerHandle | None = None

    async def drive(self, request: RunRequest) -> Ending:
        """Send the run and follow it to its end; the terminal is ours again on return."""
        with contextlib.ExitStack() as stack:
            if self._tty:
                stack.enter_context(raw_terminal(self._stdin_fd))
            async with asyncio.TaskGroup() as group:
                self._group = group
                with self._signal_handlers():
                    self._size_sent = window_size(self._stdout_fd) if self._tty else None
                    await self._send(request.message(self._size_sent))  # a refusal comes as a close
                    self._spawn(self._read_input())
                    ending = await self._receive()
                # The pump, a pending kill: nothing we send matters any more.
                for task in list(self._tasks):
                    task.cancel()
            return ending

    # -- the receive loop ----------------------------------------------------

    async def _receive(self) -> Ending:
        """Every frame until the run's `exit` (or the socket's end)."""
        while True:
            frame = await self._ws.receive()
            if frame.type is aiohttp.WSMsgType.BINARY:
                self._write_output(frame.data)
            elif frame.type is aiohttp.WSMsgType.TEXT:
                ending = self._on_message(json.loads(frame.data))
                if ending is not None:
                    return ending
            elif frame.type is not aiohttp.WSMsgType.PONG:
                break  # closed, closing or failed
        if self._stop is not None:  # we stopped it, and its `exit` never came
            return Ending(EX_KILLED if self._stop.code is None else self._stop.code, self._stop.why)
        return lost_ending(close_reason(self._ws, frame))

    def _on_message(self, message: dict[str, Any]) -> Ending | None:
        """A control message; returns the ending once there is one."""
        match message.get("type"):
            case "queued":
                self.notice(f"waiting for a free slot (position {message.get('position')})")
            case "started":
                self._started = True
                self._spawn(self._send_input())
            case "exit":
                return self._on_exit(message)
            case "error":
                error = ErrorMessage.model_validate(message)
                if not self._started and self._stop is None:
                    return refusal_ending(error)
                self.notice(f"the server said: {error.message}")
        # `hello`, `stage`, `pong` and types added later need nothing here.
        return None

    def _on_exit(self, message: dict[str, Any]) -> Ending:
        try:
            ending = run_ending(Exit.model_validate(message))
        except ValidationError:
            return lost_ending(f"an exit message this client cannot read: {message!r:.200}")
        if self._stop is None:
            return ending
        return Ending(ending.code if self._stop.code is None else self._stop.code, self._stop.why)

    def _write_output(self, frame: bytes) -> None:
        if self._stop is not None and self._stop.code == EX_BROKEN_PIPE:
            return
        try:
            self.output.write(frame)
        except BrokenPipeError:
            # Our reader left (`ce run x | head -1`): end quietly, as a shell would.
            self.stop(EX_BROKEN_PIPE, None)

    # -- what we send --------------------------------------------------------

    async def _read_input(self) -> None:
        """Our stdin into the input queue, from the `run` on (Ctrl-\\ works while queued).

        The queue is bounded: a pipe is read only as fast as the program takes it.
        """
        while data := await read_chunk(self._stdin_fd):
            if self._tty and QUIT_KEY in data:
                await self._input.put(data.split(QUIT_KEY, 1)[0])
                self.stop(None, _QUIT_WHY)
                return
            await self._input.put(data)
        await self._input.put(_END_OF_INPUT)

    async def _send_input(self) -> None:
        """The input queue to the program, from `started` (then `eof` for pipes)."""
        while (data := await self._input.get()) is not _END_OF_INPUT:
            await self._send_bytes(data)
        if not self._tty:  # a terminal's end of input is the Ctrl-D the program read
            await self._send({"type": "eof"})

    def stop(self, code: int | None, why: str | None) -> None:
        """End the run from our side: record why first, then `kill`; idempotent."""
        if self._stop is not None:
            return
        self._stop = _Stop(code, why)
        self._spawn(self._kill())

    async def _kill(self) -> None:
        await self._send({"type": "kill"})
        # A run still in line is cancelled without an `exit`; a started one
        # sends its `exit`, unless the server is gone: stop waiting then.
        if self._started:
            await asyncio.sleep(KILL_WAIT_S)
        await self._ws.close()

    async def _send(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError):
            await self._ws.send_str(json.dumps(message))

    async def _send_bytes(self, data: bytes) -> None:
        if data:
            with contextlib.suppress(ConnectionError):
                await self._ws.send_bytes(data)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._group is None:
            raise RuntimeError("RunSession: a task spawned outside drive()")
        task = self._group.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- signals to `ce` -----------------------------------------------------

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGWINCH follows our window; SIGINT goes to the program; SIGQUIT,
        SIGTERM and SIGHUP stop the run. Removed on the way out."""
        loop = asyncio.get_running_loop()
        handlers: dict[signal.Signals, Callable[[], None]] = {
            signal.SIGINT: lambda: self._spawn(self._send({"type": "signal", "signal": "SIGINT"})),
            signal.SIGQUIT: lambda: self.stop(None, _QUIT_WHY),
        }
        for number in _STOPPING_SIGNALS:
            handlers[number] = functools.partial(
                self.stop,
                signal_exit_code(number.name),
                f"ce got {number.name}: the run was killed",
            )
        if self._tty:
            handlers[signal.SIGWINCH] = self._on_resize
        for number, handler in handlers.items():
            loop.add_signal_handler(number, handler)
        try:
            yield
        finally:
            for number in handlers:
                loop.remove_signal_handler(number)
            if self._resize_timer is not None:
                self._resize_timer.cancel()

    def _on_resize(self) -> None:
        """SIGWINCH: send the size once the window has settled.

        Dragging a window's edge raises dozens a second; the server allows
        `CE_CAPACITY__CONTROLS_PER_SECOND` control messages and refuses more.
        """
        if self._resize_timer is not None:
            self._resize_timer.cancel()
        self._resize_timer = asyncio.get_running_loop().call_later(
            RESIZE_SETTLE_S, self._send_resize
        )

    def _send_resize(self) -> None:
        self._resize_timer = None
        cols, rows = window_size(self._stdout_fd)
        if (cols, rows) != self._size_sent:
            self._size_sent = (cols, rows)
            self._spawn(self._send({"type": "resize", "cols": cols, "rows": rows}))

    # -- our own lines -------------------------------------------------------

    def notice(self, text: str) -> None:
        """One line of `ce`'s own on stderr (raw mode: CR LF)."""
        self.output.notice(text, crlf=self._tty)


#: What a close code from the server means to the user (protocol.md section 1).
_CLOSE_MEANINGS: dict[int, str] = {
    CloseCode.GOING_AWAY: "the server is shutting down",
    CloseCode.POLICY: "the server refused this client",
    CloseCode.TOO_BIG: "a message was over the server's size limit",
    CloseCode.INTERNAL: "the server failed",
    CloseCode.TRY_AGAIN_LATER: "the server is overloaded; try again later",
}


def close_reason(ws: aiohttp.ClientWebSocketResponse, frame: aiohttp.WSMessage) -> str:
    """Why the socket ended, in words (with the server's own reason, if it gave one)."""
    code = ws.close_code
    if code is None or code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
        return "the connection dropped"
    said = frame.extra if frame.type is aiohttp.WSMsgType.CLOSE and frame.extra else None
    meaning = _CLOSE_MEANINGS.get(code, f"closed with code {code}")
    return f"{meaning}: {said}" if said else meaning
