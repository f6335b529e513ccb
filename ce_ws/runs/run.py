"""One run's life: box, compile stage, run stage, and exactly one `exit`.

`Run.execute()` is the orchestrator. The run stage is one TaskGroup: the
output pump in front, the input pump, the deadline and the usage sampler
beside it. Whatever ends the run records its reason first (the first one
wins) and then kills the box; the output then ends, and the helpers are
cancelled. The `exit` is built by `outcome.exit_message` from the recorded
facts and published once, by `_conclude`, guarded by the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from ce_ws.config import SandboxSettings
from ce_ws.errors import CeError, SandboxError
from ce_ws.languages import BINARY_PATH
from ce_ws.protocol import ErrorMessage, Exit, Stage, Started, Status
from ce_ws.runs.controls import ControlMailbox, Resize, Signal, deliver_controls
from ce_ws.runs.cpu_clock import CpuClock
from ce_ws.runs.deadline import Deadline
from ce_ws.runs.ending import Ending
from ce_ws.runs.fanout import Subscriber
from ce_ws.runs.outcome import (
    COMPILED_ONLY,
    WALL_TIMEOUT,
    EndReason,
    RunFacts,
    compile_failure,
    exit_message,
)
from ce_ws.runs.output import OutputMeter
from ce_ws.runs.plan import RunPlan
from ce_ws.sandbox.base import BoxExit, BoxPlan, BoxProfile, RunBox, Sandbox
from ce_ws.types import StreamId

log = logging.getLogger(__name__)


EOT = b"\x04"  # Ctrl-D: end of input on a terminal
_END_OF_INPUT = b""  # in the stdin queue: close stdin (no terminal)
_STDIN_QUEUE_CHUNKS = 64
# Memory peak is a running maximum in the cgroup: sampling only has to catch
# it before the container (and its cgroup) is gone. Often at first (short
# programs), then once a second (idle sessions must cost next to nothing).
_USAGE_FIRST_SAMPLE_S = 0.05
_USAGE_SAMPLE_S = 1.0
# ... and while the box nears its process limit (see `Usage.nears_process_limit`).
_USAGE_NEAR_PIDS_S = 0.01
_EXIT_SEND_TIMEOUT_S = 5.0
#: What a client is told when a defect of this server ended its run.
INTERNAL_FAILURE = (
    "the server failed while running your program (a bug; it is logged); run it again"
)


class RunObserver(Protocol):
    """Told about a run's timings and its end (metrics, event log)."""

    def container_started(self, seconds: float) -> None: ...
    def first_output(self, seconds: float) -> None: ...
    def ended(self, exit_message: Exit) -> None: ...


class RunState(enum.Enum):
    PENDING = "pending"  # planned, waiting for a slot; no container yet
    STARTING = "starting"  # container being created (or claimed) and started
    COMPILING = "compiling"  # compile stage running beside the launcher
    RUNNING = "running"  # the program runs; pumps and watchdogs active
    ENDED = "ended"  # `exit` decided; container removal under way or done


_NEXT_STATES = {
    RunState.PENDING: {RunState.STARTING},
    RunState.STARTING: {RunState.COMPILING, RunState.RUNNING},
    RunState.COMPILING: {RunState.RUNNING},
    RunState.RUNNING: set(),
}


@dataclass(frozen=True, slots=True)
class Terminal:
    """The run's terminal: TTY on or off, size, flow control.

    Without a TTY, the request's stdin is the whole input and stdin closes
    after it, unless `open_input`: then stdin stays open for `feed_stdin`
    until `end_input` (pipes, as an interactive compatibility API needs).
    """

    tty: bool = True
    cols: int = 80
    rows: int = 24
    flow_control: bool = False
    open_input: bool = False


class Run:
    """Drives one run from container creation to its single `exit`."""

    def __init__(
        self,
        plan: RunPlan,
        *,
        sandbox: Sandbox,
        settings: SandboxSettings,
        owner: Subscriber,
        terminal: Terminal,
        observer: RunObserver,
    ) -> None:
        self.plan = plan
        #: Until a box exists the run has an id of its own; then it is the box's.
        self.run_id = uuid.uuid4().hex
        self.state = RunState.PENDING
        #: Awaited for every message and every chunk: its pace is the program's.
        self.owner = owner
        self.terminal = terminal
        self._sandbox = sandbox
        self._settings = settings
        self._observer = observer
        self._meter = OutputMeter(
            owner.send_output, cap=plan.limits.output_bytes, flow_control=terminal.flow_control
        )
        self._deadline = Deadline(
            wall_s=plan.limits.wall_ms / 1000, idle_s=plan.limits.idle_ms / 1000
        )
        self._cpu = CpuClock(limit_ms=plan.limits.cpu_ms, cpus=plan.limits.cpus)
        self._box: RunBox | None = None
        self._ending = Ending()
        self._stdin: asyncio.Queue[bytes] = asyncio.Queue(_STDIN_QUEUE_CHUNKS)
        # The request's stdin goes first, before anything typed ahead (which
        # waits in the queue until the program runs), and always fits.
        if plan.stdin:
            self._stdin.put_nowait(plan.stdin)
        if not (terminal.tty or terminal.open_input):
            self._stdin.put_nowait(_END_OF_INPUT)  # without a terminal, input is given whole
        self._controls = ControlMailbox()
        #: Set once the compiler or the program runs: controls wait for it (controls.py).
        self._live = asyncio.Event()
        self._stage = "run"
        self._compile_exit_code: int | None = None
        #: The compile stage left the program in the compile cache (or found it there).
        self.program_kept = False
        self._admitted = time.monotonic()
        self._printed = False
        self._exit: Exit | None = None
        #: Set once the `exit` is decided, before the box is removed.
        self.decided = asyncio.Event()

    # -- control, called by the surfaces while `execute` runs --------------

    async def feed_stdin(self, data: bytes) -> None:
        """Queue input for the program; waits while the queue is full."""
        self._deadline.touch()
        await self._ending.unless_ending(self._stdin.put(data))

    async def end_input(self) -> None:
        """End of input: Ctrl-D on a terminal, closing stdin without one."""
        await self.feed_stdin(EOT if self.terminal.tty else _END_OF_INPUT)

    def resize(self, cols: int, rows: int) -> None:
        """Resize the program's terminal; never waits (the control task applies it)."""
        if not self.terminal.tty:
            return  # pipes have no size
        self.terminal = dataclasses.replace(self.terminal, cols=cols, rows=rows)
        if self.state is RunState.RUNNING:  # before, the run stage starts at this size
            self._controls.put(Resize(cols, rows))

    async def signal(self, name: str) -> None:
        """Deliver a contract signal; SIGKILL means the client killed the run.

        Only SIGKILL waits (for the engine's kill): the others are posted for
        the control task, so a backlog of them never delays a kill.
        """
        if name == "SIGKILL":
            await self.kill()
        elif self.state in {RunState.STARTING, RunState.COMPILING, RunState.RUNNING}:
            self._controls.put(Signal(name))

    async def kill(self) -> None:
        """Stop the run now (status `killed`)."""
        await self._end(EndReason(Status.KILLED))

    async def abort(self, message: str) -> None:
        """The server cannot go on with this run (status `error`, with why)."""
        await self._end(EndReason(Status.ERROR, message))

    def ack(self, count: int) -> None:
        """Flow control: the client consumed `count` more output bytes."""
        self._meter.ack(count)

    def mark_ended(self) -> None:
        """The run is over for its client (idempotent; final)."""
        self.state = RunState.ENDED  # reachable from every state, and final
        self._ending.finish()

    def _enter(self, state: RunState) -> None:
        if state not in _NEXT_STATES.get(self.state, set()):
            raise RuntimeError(f"run {self.run_id}: {self.state.name} cannot become {state.name}")
        self.state = state

    # -- the run itself ----------------------------------------------------

    async def execute(self) -> Exit:
        """Run to the end: publishes `started`, the `stage`s and the one `exit`."""
        box_exit: BoxExit | None = None
        try:
            self._enter(RunState.STARTING)
            self._admitted = time.monotonic()
            async with self._open_box() as box:
                self._observer.container_started(time.monotonic() - self._admitted)
                self._box, self.run_id = box, box.box_id
                await self.owner.send(self._started())
                # A kill or abort while the box was starting had nothing to kill yet.
                if self._ending.reason is None and await self._compile_stage(box):
                    if self.plan.compile_only:
                        self._compile_exit_code = 0
                        self._ending.record(COMPILED_ONLY)
                    else:
                        box_exit = await self._run_stage(box)
                return await self._conclude(box_exit)  # before removal: the client may go on
        except SandboxError as exc:
            log.warning("run %s failed in the engine: %s", self.run_id, exc)
            self._ending.record(EndReason(Status.ERROR, exc.message))
            return await self._conclude(box_exit)
        except Exception:
            # A defect must still end the run with an answer, never leave it hanging.
            log.exception("run %s failed", self.run_id)
            self._ending.record(EndReason(Status.ERROR, INTERNAL_FAILURE))
            return await self._conclude(box_exit)
        except asyncio.CancelledError:
            # The client went away: nobody receives an `exit`, yet the run
            # ended and is counted and logged like any other.
            self._ending.record(EndReason(Status.KILLED, "the client went away"))
            self._decide(box_exit)
            raise
        finally:
            self.mark_ended()

    @contextlib.asynccontextmanager
    async def _open_box(self) -> AsyncIterator[RunBox]:
        """The run's box, with its control task for as long as the box lives."""
        async with self._sandbox.open_box(self._box_plan()) as box:
            controls = asyncio.create_task(
                deliver_controls(
                    self._controls,
                    box,
                    live=self._live,
                    ending=lambda: self._ending.is_set,
                    refused=self._control_refused,
                )
            )
            try:
                yield box
            finally:
                controls.cancel()
                await asyncio.wait({controls})

    async def _control_refused(self, error: CeError) -> None:
        await self.owner.send(ErrorMessage(code=error.code, message=error.message))

    def _box_plan(self) -> BoxPlan:
        language = self.plan.language
        profile = BoxProfile.of(
            self.plan.limits,
            tty=self.terminal.tty,
            tmp_exec=language.compiled,
            runtime=self._settings.runtime_for(language.name),
            network=self.plan.network,
            launcher=language.box_launcher(preload=self._settings.preload),
        )
        size = (self.terminal.cols, self.terminal.rows)
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
        self._live.set()
        self._stage = "compile"
        await self.owner.send(Stage(stage="compile"))
        argv = language.compile_argv([name for name, _ in self.plan.files])
        kills: list[asyncio.Task[None]] = []  # at most one: at the output cap
        try:
            ended = await box.compile(
                argv,
                binary=BINARY_PATH,
                timeout_s=self._settings.compile_ms / 1000,
                sink=functools.partial(self._compiler_output, box, kills),
            )
        finally:
            await asyncio.gather(*kills)
        if failure := compile_failure(ended):
            self._compile_exit_code = ended.exit_code if ended else None
            self._ending.record(failure)
        self.program_kept = ended is not None and ended.kept
        return self._ending.reason is None

    async def _compiler_output(
        self, box: RunBox, kills: list[asyncio.Task[None]], data: bytes, stream: StreamId
    ) -> None:
        if self._ending.reason is not None:
            return  # ending: the compiler's stream only drains
        # The compiler has no terminal: turn its newlines into terminal ones.
        if self.terminal.tty:
            data = data.replace(b"\n", b"\r\n")
        fits = await self._ending.unless_ending(self._meter.forward(data, stream))
        if fits is False and self._ending.record(EndReason(Status.OUTPUT_LIMIT)):
            # Beside the compiler's stream, which must keep draining: under
            # gVisor a kill waited for here blocked for the engine's timeout.
            kills.append(asyncio.ensure_future(box.kill()))

    async def _run_stage(self, box: RunBox) -> BoxExit:
        self._stage = "run"
        await self.owner.send(Stage(stage="run"))
        self._deadline.start()
        self._enter(RunState.RUNNING)
        if self.terminal.tty:
            await box.resize(self.terminal.cols, self.terminal.rows)
        language = self.plan.language
        await box.go(
            language.run_argv(self.plan.entry) + self.plan.args,
            in_launcher=language.preloaded and self._settings.preload,
        )
        self._live.set()
        async with asyncio.TaskGroup() as group:
            helpers = [
                group.create_task(self._pump_input(box)),
                group.create_task(self._watch_deadline()),
                group.create_task(self._watch_usage(box)),
            ]
            await self._drain_output(box, group)
            for helper in helpers:
                helper.cancel()
        return await self._wait_exit(box)

    async def _drain_output(self, box: RunBox, group: asyncio.TaskGroup) -> None:
        """Pump the output to its end; once the run is ending, for a bounded time."""
        async with self._ending.bounded_drain(f"run {self.run_id}: output"):
            await self._pump_output(box, group)

    async def _wait_exit(self, box: RunBox) -> BoxExit:
        # The output can end before the container does (a detach); the wall
        # clock still bounds the wait.
        try:
            async with asyncio.timeout(self._deadline.wall_remaining_s() + 1):
                return await box.wait_exit()
        except TimeoutError:
            self._ending.record(WALL_TIMEOUT)
            await box.kill()
            return await box.wait_exit()

    # -- pumps and watchdogs (siblings in the run stage's TaskGroup) -------

    async def _pump_output(self, box: RunBox, group: asyncio.TaskGroup) -> None:
        while (chunk := await box.read()) is not None:
            stream, data = chunk
            self._deadline.touch()
            if not self._printed:
                self._printed = True
                self._observer.first_output(time.monotonic() - self._admitted)
            if self._ending.reason is not None:
                continue  # ending: drain so the container can stop, forward nothing
            if await self._ending.unless_ending(self._meter.forward(data, stream)) is False:
                # Kill beside this loop: without a terminal the engine reports
                # the exit only once the output is drained.
                self._ending.record(EndReason(Status.OUTPUT_LIMIT))
                group.create_task(box.kill())

    async def _pump_input(self, box: RunBox) -> None:
        stdin_closed = False
        while True:
            data = await self._stdin.get()
            self._deadline.touch()
            if stdin_closed:
                continue  # input after the end of input has nowhere to go
            if data == _END_OF_INPUT:
                await box.close_stdin()
                stdin_closed = True
                continue
            try:
                await box.write(data)
            except SandboxError as exc:
                # The attach closed under the write: the program ended before
                # its input reached it (a Piston job's stdin behind a hello
                # world), or the engine went away. Either way the input has
                # nowhere to go, and how the run ended is the exit's to say.
                log.info("run %s: stdin dropped: %s", self.run_id, exc.message)
                stdin_closed = True

    async def _watch_deadline(self) -> None:
        await self._end(await self._deadline.passed())

    async def _watch_usage(self, box: RunBox) -> None:
        """Sample the box's cgroup: the memory peak for the `exit`, the CPU time for its limit."""
        delay = _USAGE_FIRST_SAMPLE_S
        while True:
            usage = await box.sample_usage()
            self._cpu.read(usage.cpu_ns)
            if self._cpu.spent:
                await self._end(self._cpu.reason())
                return
            await asyncio.sleep(min(delay, self._cpu.next_reading_s()))
            delay = min(2 * delay, _USAGE_SAMPLE_S)
            if usage.nears_process_limit and not usage.forks_refused:
                delay = _USAGE_NEAR_PIDS_S

    # -- ending ------------------------------------------------------------

    async def _end(self, reason: EndReason) -> None:
        """Record the reason first, then kill: the classification uses ours."""
        if self._ending.record(reason) and self._box is not None:
            await self._box.kill()

    def _decide(self, box_exit: BoxExit | None) -> Exit:
        """Build the run's `exit` once from what was recorded, and report it."""
        if self._exit is None:
            self._exit = exit_message(
                RunFacts(
                    run_id=self.run_id,
                    stage=self._stage,
                    reason=self._ending.reason,
                    box_exit=box_exit,
                    compile_exit_code=self._compile_exit_code,
                    wall_ms=self._deadline.elapsed_ms(),
                    output_bytes=self._meter.sent,
                    truncated=self._meter.truncated,
                    memory_limit_mb=self.plan.limits.memory_mb,
                    correlation_id=self.plan.correlation_id,
                )
            )
            self.decided.set()
            try:
                self._observer.ended(self._exit)
            except Exception:  # telemetry must never change how a run ends
                log.exception("reporting the end of run %s failed", self.run_id)
        return self._exit

    @property
    def exit(self) -> Exit | None:
        """The `exit`, once decided."""
        return self._exit

    async def _conclude(self, box_exit: BoxExit | None) -> Exit:
        """Decide the `exit` and publish it; the state makes it happen once."""
        if self.state is RunState.ENDED:
            return self._decide(box_exit)
        message = self._decide(box_exit)
        self.mark_ended()
        try:
            async with asyncio.timeout(_EXIT_SEND_TIMEOUT_S):
                await self.owner.send(message)
        except (TimeoutError, ConnectionError) as exc:
            log.info("exit of run %s not delivered: %r", self.run_id, exc)
        return message
