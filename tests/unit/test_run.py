"""The run lifecycle, in order, with a recording fake box (no engine needed).

The proof that runs work is in tests/integration against the real engine;
these tests pin down the order of events and the end classification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ce_ws.config import RunLimits, Settings
from ce_ws.languages import load_languages
from ce_ws.protocol import Exit, Limit, ServerMessage, Status
from ce_ws.runs.outcome import PROCESS_LIMIT, EndReason, classify
from ce_ws.runs.plan import RunPlan
from ce_ws.runs.run import INTERNAL_FAILURE, Run, RunState, Terminal
from ce_ws.sandbox.base import BoxExit, BoxPlan, CompileExit, Usage
from ce_ws.types import COMPILER, OutputSink

LANGUAGES = load_languages()


class RecordingBox:
    """Plays a program: prints `output`, then exits with `exit_code` (or waits to be killed)."""

    def __init__(
        self,
        events: list[str],
        *,
        output: list[bytes],
        exit_code: int = 0,
        compile_code: int = 0,
        compile_exit: CompileExit | None = None,
        compile_output: list[bytes] | None = None,
        hang: bool = False,
    ) -> None:
        self.box_id = "box-1"
        self.events = events
        self._output = list(output)
        self._exit_code = exit_code
        self._compile_exit = compile_exit or CompileExit(exit_code=compile_code, oom_killed=False)
        self._compile_output = compile_output or []
        self._killed = asyncio.Event()
        self._hang = hang
        self.went = asyncio.Event()

    async def compile(
        self, argv: list[str], *, binary: str, timeout_s: float, sink: OutputSink
    ) -> CompileExit | None:
        self.events.append(f"compile {argv[0]}")
        for data in self._compile_output:
            await sink(data, COMPILER)
        return self._compile_exit

    async def go(self, argv: list[str], *, in_launcher: bool = False) -> None:
        self.events.append(f"go {' '.join(argv)}")
        self.went.set()

    async def read(self) -> tuple[int, bytes] | None:
        if self._output:
            return 1, self._output.pop(0)
        if self._hang:
            await self._killed.wait()
        return None

    async def write(self, data: bytes) -> None:
        self.events.append(f"write {data!r}")

    async def close_stdin(self) -> None:
        self.events.append("close stdin")

    async def resize(self, cols: int, rows: int) -> None:
        self.events.append(f"resize {cols}x{rows}")

    async def signal(self, name: str) -> None:
        self.events.append(f"signal {name}")

    async def kill(self) -> None:
        self.events.append("kill")
        self._killed.set()

    async def sample_usage(self) -> Usage:
        return Usage(1024, 5_000_000)

    async def wait_exit(self) -> BoxExit:
        self.events.append("wait exit")
        code = 137 if self._killed.is_set() else self._exit_code
        return BoxExit(
            exit_code=code,
            signal="SIGKILL" if code == 137 else None,
            oom_killed=False,
            usage=Usage(1024, 5_000_000),
        )


class RecordingSandbox:
    def __init__(self, box: RecordingBox) -> None:
        self.box = box

    @contextlib.asynccontextmanager
    async def open_box(self, plan: BoxPlan) -> AsyncIterator[RecordingBox]:
        self.box.events.append(f"open tty={plan.profile.tty} exec={plan.profile.tmp_exec}")
        try:
            yield self.box
        finally:
            self.box.events.append("destroy")


class RecordingClient:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def send(self, message: ServerMessage) -> None:
        data: dict[str, Any] = message.model_dump()
        detail = data.get("stage") if data["type"] == "stage" else data.get("status", "")
        self.events.append(f"send {data['type']} {detail}".strip())

    async def send_output(self, data: bytes, stream: int) -> None:
        self.events.append(f"output {data!r}")


class Unobserved:
    def container_started(self, seconds: float) -> None: ...
    def first_output(self, seconds: float) -> None: ...
    def ended(self, exit_message: Exit) -> None: ...


def make_run(language: str, box: RecordingBox, events: list[str], **limits: Any) -> Run:
    plan = RunPlan(
        language=LANGUAGES.resolve(language),
        files=[("main", b"")],
        args=["x"],
        stdin=None,
        limits=RunLimits(**limits),
        correlation_id=None,
    )
    return Run(
        plan,
        sandbox=RecordingSandbox(box),
        settings=Settings().sandbox,
        owner=RecordingClient(events),
        terminal=Terminal(),
        observer=Unobserved(),
    )


async def test_interpreted_run_events_in_order() -> None:
    events: list[str] = []
    run = make_run("python", RecordingBox(events, output=[b"hi\r\n"]), events)
    exit_message = await run.execute()
    assert exit_message.status is Status.EXITED and exit_message.run_id == "box-1"
    assert events == [
        "open tty=True exec=False",
        "send started",
        "send stage run",
        "resize 80x24",
        "go python3 -u /work/main x",
        "output b'hi\\r\\n'",
        "wait exit",
        "send exit exited",
        "destroy",
    ]
    assert run.state is RunState.ENDED


async def test_compile_error_stops_before_go() -> None:
    events: list[str] = []
    run = make_run("c", RecordingBox(events, output=[], compile_code=1), events)
    exit_message = await run.execute()
    assert (exit_message.status, exit_message.stage, exit_message.exit_code) == (
        Status.COMPILE_ERROR,
        "compile",
        1,
    )
    assert events == [
        "open tty=True exec=True",
        "send started",
        "send stage compile",
        "compile gcc",
        "send exit compile_error",
        "destroy",
    ]


@pytest.mark.parametrize(
    ("ended", "status", "message"),
    [
        (CompileExit(1, oom_killed=True), Status.OOM, "the compiler reached the memory limit"),
        (CompileExit(137, oom_killed=True, box_stopped=True), Status.OOM, "the compiler reached the memory limit"),
        (CompileExit(0, oom_killed=False, box_stopped=True), Status.ERROR, "the sandbox stopped during the compile stage"),
        (CompileExit(None, oom_killed=False), Status.COMPILE_ERROR, "the compiler ended without an exit code"),
    ],
)  # fmt: skip
async def test_a_compile_stage_that_failed_says_why(
    ended: CompileExit, status: Status, message: str
) -> None:
    events: list[str] = []
    run = make_run("c", RecordingBox(events, output=[], compile_exit=ended), events)
    exit_message = await run.execute()
    assert (exit_message.status, exit_message.stage) == (status, "compile")
    assert exit_message.message == message
    assert "go" not in " ".join(events)


async def test_compiler_output_past_the_cap_ends_the_run_at_exactly_the_cap() -> None:
    events: list[str] = []
    box = RecordingBox(events, output=[b"never"], compile_output=[b"w" * 600] * 3)
    exit_message = await make_run("c", box, events, output_bytes=1000).execute()
    assert (exit_message.status, exit_message.stage) == (Status.OUTPUT_LIMIT, "compile")
    assert exit_message.truncated and exit_message.output_bytes == 1000
    forwarded = [event for event in events if event.startswith("output")]
    assert forwarded == [f"output {b'w' * 600!r}", f"output {b'w' * 400!r}"]
    assert "kill" in events and "go" not in " ".join(events)


async def test_wall_clock_records_timeout_before_it_kills() -> None:
    events: list[str] = []
    run = make_run("bash", RecordingBox(events, output=[], hang=True), events, wall_ms=100)
    exit_message = await run.execute()
    assert (exit_message.status, exit_message.limit) == (Status.TIMEOUT, Limit.WALL)
    assert events.index("kill") < events.index("wait exit") < events.index("send exit timeout")


async def test_idle_clock_says_idle() -> None:
    events: list[str] = []
    run = make_run("bash", RecordingBox(events, output=[], hang=True), events, idle_ms=100)
    exit_message = await run.execute()
    assert (exit_message.status, exit_message.limit) == (Status.IDLE_TIMEOUT, Limit.IDLE)


class BusyBox(RecordingBox):
    """A program in a busy loop: each cgroup reading is 50 ms of CPU time later."""

    cpu_ns = 0

    async def sample_usage(self) -> Usage:
        self.cpu_ns += 50_000_000
        return Usage(1024, self.cpu_ns)


async def test_cpu_time_ends_a_busy_run_before_its_clocks() -> None:
    events: list[str] = []
    run = make_run("bash", BusyBox(events, output=[], hang=True), events, cpu_ms=200)
    exit_message = await run.execute()
    assert (exit_message.status, exit_message.limit) == (Status.TIMEOUT, Limit.CPU)
    assert exit_message.message == "the program used its 0.2 s of CPU time"
    assert events.index("kill") < events.index("wait exit")


async def test_a_run_that_ends_by_itself_has_no_limit() -> None:
    events: list[str] = []
    exit_message = await make_run("bash", RecordingBox(events, output=[b"hi"]), events).execute()
    assert exit_message.status is Status.EXITED and exit_message.limit is None
    assert "limit" not in exit_message.to_data()


async def test_client_kill_wins_over_the_exit_code() -> None:
    events: list[str] = []
    box = RecordingBox(events, output=[], hang=True)
    run = make_run("bash", box, events)
    task = asyncio.create_task(run.execute())
    await box.went.wait()
    await run.kill()
    assert (await task).status is Status.KILLED


async def test_a_run_cannot_go_back_to_an_earlier_state() -> None:
    run = make_run("bash", RecordingBox([], output=[]), [])
    run._enter(RunState.STARTING)
    with pytest.raises(RuntimeError, match="cannot become"):
        run._enter(RunState.STARTING)


@pytest.mark.parametrize(
    ("reason", "box_exit", "status"),
    [
        (Status.TIMEOUT, BoxExit(137, "SIGKILL", oom_killed=True), Status.TIMEOUT),
        (None, BoxExit(137, "SIGKILL", oom_killed=True), Status.OOM),
        (None, BoxExit(0, None, oom_killed=True), Status.EXITED),
        (None, BoxExit(139, "SIGSEGV", oom_killed=False), Status.EXITED),
        (None, BoxExit(2, None, oom_killed=False, process_limit_reached=True), Status.KILLED),
        (Status.TIMEOUT, BoxExit(2, None, False, process_limit_reached=True), Status.TIMEOUT),
        (None, None, Status.ERROR),
    ],
)
def test_classification_prefers_our_reason_then_oom_then_exit(
    reason: Status | None, box_exit: BoxExit | None, status: Status
) -> None:
    recorded = EndReason(reason) if reason is not None else None
    assert classify(recorded, box_exit).status is status


def test_a_sandbox_that_died_at_its_process_limit_says_so() -> None:
    verdict = classify(None, BoxExit(2, None, oom_killed=False, process_limit_reached=True))
    assert verdict == PROCESS_LIMIT and verdict.message is not None
    assert "more processes than its limit allows" in verdict.message


@pytest.mark.parametrize(
    ("processes", "limit", "near"),
    [(None, 448, False), (223, 448, False), (224, 448, True), (10, None, False), (10, 0, False)],
)
def test_a_box_nears_its_process_limit_past_half_of_it(
    processes: int | None, limit: int | None, near: bool
) -> None:
    usage = Usage(1024, 1, processes=processes, process_limit=limit)
    assert usage.nears_process_limit is near


def test_a_last_sample_without_pids_readings_keeps_the_earlier_ones() -> None:
    earlier = Usage(1024, 1, processes=300, process_limit=448, forks_refused=1)
    assert Usage(2048, 2).with_processes_of(earlier) == Usage(
        2048, 2, processes=300, process_limit=448, forks_refused=1
    )
    fresh = Usage(2048, 2, processes=5, process_limit=448, forks_refused=0)
    assert fresh.with_processes_of(earlier) is fresh


class DefectiveBox(RecordingBox):
    """A box whose start fails with what no code path expects (a defect)."""

    async def go(self, argv: list[str]) -> None:
        raise AssertionError("a library's assert, as when the attach stream is gone")


async def test_a_defect_during_a_run_still_ends_it_with_an_error_and_removes_its_box() -> None:
    events: list[str] = []
    run = make_run("python", DefectiveBox(events, output=[]), events)
    exit_message = await run.execute()
    assert exit_message.status is Status.ERROR and exit_message.message == INTERNAL_FAILURE
    assert sorted(events[-2:]) == ["destroy", "send exit error"]
    assert run.state is RunState.ENDED
