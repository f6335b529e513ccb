"""One run's life: container, compile stage, pumps, watchdogs, exit, cleanup.

The web layer builds a `Run` from a `RunPlan` and a `RunClient` (how to talk
back), awaits `Run.execute()`, and meanwhile forwards the client's input to
its control methods. Nothing here knows about WebSockets or Docker details:
the sandbox's `Box` is the terminal side, `RunClient` the socket side.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from ce_ws.config import Settings
from ce_ws.controls import Control, ControlMailbox, Resize, Signal
from ce_ws.errors import CeError, SandboxError
from ce_ws.plan import RunPlan
from ce_ws.protocol import ErrorMessage, Exit, ServerMessage, Stage, Started, Status
from ce_ws.sandbox import BoxExit, BoxPlan, BoxProfile, CompileExit, Usage
from ce_ws.types import OutputSink, StreamId

log = logging.getLogger(__name__)

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
EOT = b"\x04"  # Ctrl-D: end of input on a terminal
_END_OF_INPUT = b""  # in the stdin queue: close stdin (no terminal)
_STDIN_QUEUE_CHUNKS = 64
# Memory peak is a running maximum in the cgroup: sampling only has to catch
# it before the container (and its cgroup) is gone. Often at first (short
# programs), then once a second (idle sessions must cost next to nothing).
_USAGE_FIRST_SAMPLE_S = 0.05
_USAGE_SAMPLE_S = 1.0
_EXIT_SEND_TIMEOUT_S = 5.0
# Once a run is ending (killed), how long its output may take to end. The
# engine normally closes the stream at once; with the program's input backed
# up (a raw terminal that never reads, a client flooding stdin) it has kept
# it open for minutes, holding the run past its deadline.
_DRAIN_AFTER_END_S = 2.0


class RunClient(Protocol):
    """How a run talks back to whoever started it."""

    async def send(self, message: ServerMessage) -> None:
        """Send one control message."""

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        """Send output bytes from `stream` (awaiting it is backpressure)."""


class RunBox(Protocol):
    """The terminal side of a run: one started container (see `sandbox.Box`)."""

    box_id: str

    async def compile(
        self, argv: list[str], *, timeout_s: float, sink: OutputSink
    ) -> CompileExit | None: ...
    async def go(self, extra_args: list[str]) -> None: ...
    async def read(self) -> tuple[StreamId, bytes] | None: ...
    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, cols: int, rows: int) -> None: ...
    async def signal(self, name: str) -> None: ...
    async def kill(self) -> None: ...
    def sample_usage(self) -> Usage: ...
    async def wait_exit(self) -> BoxExit: ...


class Sandbox(Protocol):
    """Opens boxes; `sandbox.Engine` is the real one."""

    def open_box(self, plan: BoxPlan) -> AbstractAsyncContextManager[RunBox]: ...


class RunObserver(Protocol):
    """Told about a run's timings and its end (metrics, event log)."""

    def container_started(self, seconds: float) -> None: ...
    def first_output(self, seconds: float) -> None: ...
    def ended(self, exit_message: Exit) -> None: ...


class _Unobserved:
    """The observer of a run nobody watches."""

    def container_started(self, seconds: float) -> None: ...
    def first_output(self, seconds: float) -> None: ...
    def ended(self, exit_message: Exit) -> None: ...


class RunState(enum.Enum):
    PENDING = "pending"  # planned, no container yet
    STARTING = "starting"  # container being created and started
    COMPILING = "compiling"  # compile stage running beside the launcher
    RUNNING = "running"  # the program runs; pumps and watchdogs active
    ENDED = "ended"  # `exit` sent; container removal under way or done


_NEXT_STATES = {
    RunState.PENDING: {RunState.STARTING},
    RunState.STARTING: {RunState.COMPILING, RunState.RUNNING},
    RunState.COMPILING: {RunState.RUNNING},
    RunState.RUNNING: set(),
}


@dataclass(frozen=True, slots=True)
class Terminal:
    """The run's terminal: TTY on or off, size, flow control."""

    tty: bool = True
    cols: int = 80
    rows: int = 24
    flow_control: bool = False


class Run:
    """Drives one run from container creation to the single `exit` message."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        sandbox: Sandbox,
        settings: Settings,
        client: RunClient,
        terminal: Terminal,
        observer: RunObserver | None = None,
    ) -> None:
        self.plan = plan
        #: Until a box exists the run has an id of its own; then it is the box's.
        self.run_id = uuid.uuid4().hex
        self.state = RunState.PENDING
        self._sandbox = sandbox
        self._settings = settings
        self._client = client
        self._terminal = terminal
        self._observer = observer or _Unobserved()
        self._box: RunBox | None = None
        self._reason: Status | None = None
        self._reason_message: str | None = None
        self._ending = asyncio.Event()
        self._drain: asyncio.Timeout | None = None  # bounds the output once ending
        self._stdin: asyncio.Queue[bytes] = asyncio.Queue(_STDIN_QUEUE_CHUNKS)
        self._controls = ControlMailbox()
        self._window = asyncio.Event()
        self._window.set()
        self._unacked = 0
        self._output_bytes = 0
        self._truncated = False
        self._stage: str = "run"
        self._compile_exit_code: int | None = None
        self._began = self._admitted = time.monotonic()
        self._last_activity = self._began
        self._printed = False
        self._end_reported = False

    # -- control, called by the client side while `execute` runs ---------

    async def feed_stdin(self, data: bytes) -> None:
        """Queue input for the program; waits while the queue is full."""
        self._last_activity = time.monotonic()
        put = asyncio.ensure_future(self._stdin.put(data))
        await self._until_ending(put)

    async def end_input(self) -> None:
        """End of input: Ctrl-D on a terminal, closing stdin without one."""
        await self.feed_stdin(EOT if self._terminal.tty else _END_OF_INPUT)

    def resize(self, cols: int, rows: int) -> None:
        """Resize the program's terminal; never waits (the control task applies it)."""
        self._terminal = Terminal(self._terminal.tty, cols, rows, self._terminal.flow_control)
        if self.state is RunState.RUNNING:  # before, the run stage starts at this size
            self._controls.put(Resize(cols, rows))

    async def signal(self, name: str) -> None:
        """Deliver a contract signal; SIGKILL means the client killed the run.

        Only SIGKILL waits (for the engine's kill): the others are posted for
        the control task, so a backlog of them never delays a kill.
        """
        if name == "SIGKILL":
            await self.kill()
        elif self.state in {RunState.COMPILING, RunState.RUNNING}:
            self._controls.put(Signal(name))

    async def kill(self) -> None:
        """Stop the run now (status `killed`)."""
        await self._end(Status.KILLED)

    async def abort(self, message: str) -> None:
        """The server cannot go on with this run (status `error`, with why)."""
        await self._end(Status.ERROR, message)

    def ack(self, count: int) -> None:
        """Flow control: the client consumed `count` more output bytes."""
        self._unacked = max(0, self._unacked - count)
        if self._unacked <= LOW_WATER:
            self._window.set()

    def _enter(self, state: RunState) -> None:
        if state not in _NEXT_STATES.get(self.state, set()):
            raise RuntimeError(f"run {self.run_id}: {self.state.name} cannot become {state.name}")
        self.state = state

    def mark_ended(self) -> None:
        """The run is over for its client (idempotent; final)."""
        self.state = RunState.ENDED  # reachable from every state, and final
        self._ending.set()

    # -- the run itself ----------------------------------------------------

    async def execute(self) -> Exit:
        """Run to the end; sends `started`, `stage`s and exactly one `exit`."""
        box_exit: BoxExit | None = None
        try:
            self._enter(RunState.STARTING)
            self._admitted = time.monotonic()
            async with self._open_box() as box:
                self._observer.container_started(time.monotonic() - self._admitted)
                self._box, self.run_id = box, box.box_id
                await self._client.send(self._started())
                # A kill or abort while the box was starting had nothing to kill yet.
                if self._reason is None and await self._compile_stage(box):
                    box_exit = await self._run_stage(box)
                exit_message = self._exit_message(box_exit)
                await self._send_exit(exit_message)
                self.mark_ended()  # the client may start its next run during removal
            return exit_message
        except SandboxError as exc:
            log.warning("run %s failed in the engine: %s", self.run_id, exc)
            self._record(Status.ERROR, exc.message)
            exit_message = self._exit_message(box_exit)
            await self._send_exit(exit_message)
            return exit_message
        except asyncio.CancelledError:
            # The client went away: nobody receives an `exit`, yet the run
            # ended and is counted and logged like any other.
            self._record(Status.KILLED, "the client went away")
            self._report_end(self._exit_message(box_exit))
            raise
        finally:
            self.mark_ended()

    @asynccontextmanager
    async def _open_box(self) -> AsyncIterator[RunBox]:
        """The run's box, with its control task for as long as the box lives."""
        async with self._sandbox.open_box(self._box_plan()) as box:
            controls = asyncio.create_task(self._deliver_controls(box))
            try:
                yield box
            finally:
                # What is still pending dies with the run (a client that left
                # takes its backlog with it); the box is removed after this.
                controls.cancel()
                await asyncio.wait({controls})

    async def _deliver_controls(self, box: RunBox) -> None:
        """The run's one control task: signals and resizes, one engine call at a time."""
        while True:
            control = await self._controls.get()
            if self._reason is not None:
                continue  # ending: the kill makes every control moot
            try:
                await _apply(control, box)
            except CeError as exc:
                log.info("run %s: %s not delivered: %s", self.run_id, control, exc.message)
                # Once the run ends, the engine failing is expected: nothing to tell.
                if self._reason is None and self.state is not RunState.ENDED:
                    await self._client.send(ErrorMessage(code=exc.code, message=exc.message))
            except Exception:
                # A bug must not end the run (or stop the next controls).
                log.exception("run %s: delivering %s failed", self.run_id, control)

    def _box_plan(self) -> BoxPlan:
        language = self.plan.language
        profile = BoxProfile.of(
            self.plan.limits,
            tty=self._terminal.tty,
            tmp_exec=language.compiled,
            runtime=self._settings.sandbox.runtime_for(language.name),
        )
        size = (self._terminal.cols, self._terminal.rows)
        return BoxPlan(profile=profile, files=self.plan.files, size=size)

    def _started(self) -> Started:
        return Started(
            run_id=self.run_id,
            language=self.plan.language.name,
            version=self.plan.language.version,
            limits=self.plan.limits.model_dump(),
            id=self.plan.correlation_id,
        )

    async def _compile_stage(self, box: RunBox) -> bool:
        """Compile when the language needs it; True when the run stage may follow."""
        language = self.plan.language
        if not language.compiled:
            return True
        self._enter(RunState.COMPILING)
        self._stage = "compile"
        await self._client.send(Stage(stage="compile"))
        argv = language.compile_argv([name for name, _ in self.plan.files])
        ended = await box.compile(
            argv, timeout_s=self._settings.sandbox.compile_ms / 1000, sink=self._compiler_output
        )
        if ended is None:
            self._record(Status.TIMEOUT, "the compile stage ran out of time")
        elif ended.exit_code != 0 or ended.box_stopped:
            self._compile_exit_code = ended.exit_code
            self._record(*_compile_failure(ended))
        return self._reason is None

    async def _compiler_output(self, data: bytes, stream: StreamId) -> None:
        # The compiler has no terminal: turn its newlines into terminal ones.
        await self._forward(data.replace(b"\n", b"\r\n") if self._terminal.tty else data, stream)

    async def _run_stage(self, box: RunBox) -> BoxExit:
        self._stage = "run"
        await self._client.send(Stage(stage="run"))
        self._began = self._last_activity = time.monotonic()
        self._enter(RunState.RUNNING)
        if self._terminal.cols and self._terminal.tty:
            await box.resize(self._terminal.cols, self._terminal.rows)
        await box.go(self.plan.language.run_argv(self.plan.entry) + self.plan.args)
        if self.plan.stdin:
            self._stdin.put_nowait(self.plan.stdin)
        if not self._terminal.tty:
            self._stdin.put_nowait(_END_OF_INPUT)  # without a terminal, input is given whole
        async with asyncio.TaskGroup() as group:
            helpers = [
                group.create_task(self._pump_input(box)),
                group.create_task(self._watch_wall_clock()),
                group.create_task(self._watch_idle()),
                group.create_task(self._sample_usage(box)),
            ]
            await self._drain_output(box, group)
            for helper in helpers:
                helper.cancel()
        return await self._wait_exit(box)

    async def _drain_output(self, box: RunBox, group: asyncio.TaskGroup) -> None:
        """Pump the output to its end; once the run is ending, for a bounded time."""
        try:
            async with asyncio.timeout(None) as self._drain:
                if self._reason is not None:
                    self._drain.reschedule(asyncio.get_running_loop().time() + _DRAIN_AFTER_END_S)
                await self._pump_output(box, group)
        except TimeoutError:
            if self._drain is None or not self._drain.expired():
                raise
            log.warning("run %s: output still open after its end; not waiting", self.run_id)
        finally:
            self._drain = None

    async def _wait_exit(self, box: RunBox) -> BoxExit:
        # The output can end before the container does (a detach); the wall
        # clock still bounds the wait.
        remaining = self.plan.limits.wall_ms / 1000 - (time.monotonic() - self._began)
        try:
            async with asyncio.timeout(max(remaining, 0) + 1):
                return await box.wait_exit()
        except TimeoutError:
            self._record(Status.TIMEOUT)
            await box.kill()
            return await box.wait_exit()

    # -- pumps and watchdogs (siblings in the run's TaskGroup) ------------

    async def _pump_output(self, box: RunBox, group: asyncio.TaskGroup) -> None:
        while (chunk := await box.read()) is not None:
            stream, data = chunk
            self._last_activity = time.monotonic()
            if not self._printed:
                self._printed = True
                self._observer.first_output(self._last_activity - self._admitted)
            if self._reason is not None:
                continue  # ending: drain so the container can stop, forward nothing
            room = self.plan.limits.output_bytes - self._output_bytes
            if len(data) > room:
                self._truncated = True
                await self._forward(data[:room], stream)
                # Kill beside this loop: without a terminal the engine reports
                # the exit only once the output is drained.
                self._record(Status.OUTPUT_LIMIT)
                group.create_task(box.kill())
                continue
            await self._forward(data, stream)

    async def _forward(self, data: bytes, stream: StreamId) -> None:
        if not data or self._reason is not None:
            return
        self._output_bytes += len(data)
        if self._terminal.flow_control:
            self._unacked += len(data)
            if self._unacked >= HIGH_WATER:
                self._window.clear()
        await self._until_ending(asyncio.ensure_future(self._client.send_output(data, stream)))
        if not self._window.is_set():
            await self._until_ending(asyncio.ensure_future(self._window.wait()))

    async def _pump_input(self, box: RunBox) -> None:
        while True:
            data = await self._stdin.get()
            self._last_activity = time.monotonic()
            if data == _END_OF_INPUT:
                await box.close_stdin()
            else:
                await box.write(data)

    async def _watch_wall_clock(self) -> None:
        await asyncio.sleep(self.plan.limits.wall_ms / 1000)
        await self._end(Status.TIMEOUT)

    async def _watch_idle(self) -> None:
        idle_s = self.plan.limits.idle_ms / 1000
        while True:
            quiet = time.monotonic() - self._last_activity
            if quiet >= idle_s:
                await self._end(Status.IDLE_TIMEOUT)
                return
            await asyncio.sleep(idle_s - quiet)

    async def _sample_usage(self, box: RunBox) -> None:
        delay = _USAGE_FIRST_SAMPLE_S
        while True:
            box.sample_usage()  # a few small cgroup file reads: cheaper than a thread hop
            await asyncio.sleep(delay)
            delay = min(2 * delay, _USAGE_SAMPLE_S)

    # -- ending ------------------------------------------------------------

    def _record(self, reason: Status, message: str | None = None) -> bool:
        """Record why the run ends; the first reason wins. True if this one did."""
        if self._reason is not None:
            return False
        self._reason, self._reason_message = reason, message
        self._ending.set()
        if self._drain is not None:
            self._drain.reschedule(asyncio.get_running_loop().time() + _DRAIN_AFTER_END_S)
        return True

    async def _end(self, reason: Status, message: str | None = None) -> None:
        """Record the reason first, then kill: the classification uses ours."""
        if self._record(reason, message) and self._box is not None:
            await self._box.kill()

    async def _until_ending(self, work: asyncio.Future[Any]) -> None:
        """Await `work` unless the run starts ending first (then drop it)."""
        if self._ending.is_set() and not work.done():
            work.cancel()
            return
        ending = asyncio.ensure_future(self._ending.wait())
        try:
            await asyncio.wait({work, ending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
            if not work.done():
                work.cancel()
        if work.done() and not work.cancelled() and work.exception() is not None:
            raise work.exception()  # type: ignore[misc]

    def _exit_message(self, box_exit: BoxExit | None) -> Exit:
        status, message = classify(self._reason, box_exit)
        exit_code = box_exit.exit_code if box_exit else self._compile_exit_code
        usage = box_exit.usage if box_exit else None
        memory_peak = usage.memory_peak_bytes if usage else None
        if status is Status.OOM:
            # The cgroup vanishes with the container, often before a last
            # sample; reaching the limit is what an OOM kill means.
            memory_peak = max(memory_peak or 0, self.plan.limits.memory_mb * 1024 * 1024)
        return Exit(
            run_id=self.run_id,
            stage="compile" if self._stage == "compile" else "run",
            status=status,
            exit_code=exit_code,
            signal=box_exit.signal if box_exit and status is Status.EXITED else None,
            wall_ms=int((time.monotonic() - self._began) * 1000),
            cpu_ms=usage.cpu_ns // 1_000_000 if usage and usage.cpu_ns is not None else None,
            memory_peak_bytes=memory_peak,
            output_bytes=self._output_bytes,
            truncated=self._truncated,
            message=self._reason_message or message,
            id=self.plan.correlation_id,
        )

    def _report_end(self, message: Exit) -> None:
        if self._end_reported:
            return
        self._end_reported = True
        try:
            self._observer.ended(message)
        except Exception:  # telemetry must never change how a run ends
            log.exception("reporting the end of run %s failed", self.run_id)

    async def _send_exit(self, message: Exit) -> None:
        self._report_end(message)
        try:
            async with asyncio.timeout(_EXIT_SEND_TIMEOUT_S):
                await self._client.send(message)
        except (TimeoutError, ConnectionError) as exc:
            log.info("exit of run %s not delivered: %r", self.run_id, exc)


async def _apply(control: Control, box: RunBox) -> None:
    """One engine call for one control."""
    if isinstance(control, Resize):
        await box.resize(control.cols, control.rows)
    else:
        await box.signal(control.name)


def _compile_failure(ended: CompileExit) -> tuple[Status, str]:
    """Why a compile stage that did not succeed ended."""
    if ended.oom_killed:
        return Status.OOM, "the compiler reached the memory limit"
    if ended.box_stopped:
        return Status.ERROR, "the sandbox stopped during the compile stage"
    if ended.exit_code is None:
        return Status.COMPILE_ERROR, "the compiler ended without an exit code"
    return Status.COMPILE_ERROR, f"the compiler exited with code {ended.exit_code}"


def classify(reason: Status | None, box_exit: BoxExit | None) -> tuple[Status, str | None]:
    """The exit status: our recorded reason wins, then OOM, then the exit code."""
    if reason is not None:
        return reason, None
    if box_exit is None:
        return Status.ERROR, "the run ended without an exit status"
    if box_exit.oom_killed and box_exit.signal == "SIGKILL":
        return Status.OOM, "the program reached its memory limit"
    if box_exit.oom_killed:
        return Status.EXITED, "a child process was killed by the memory limit"
    return Status.EXITED, None
