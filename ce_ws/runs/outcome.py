"""How a run ended, as the `exit` message says it: pure functions of recorded facts.

Our recorded end reason wins over anything the box reports (a watchdog
records why before it kills); then the engine's OOM verdict; then the exit
code. Nothing here does I/O, so every classification has a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass

from ce_ws.protocol import Exit, Limit, Status
from ce_ws.sandbox.base import BoxExit, CompileExit

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class EndReason:
    """Why the server ended a run (the first one recorded wins)."""

    status: Status
    message: str | None = None
    #: Which limit ended it, for `timeout` and `idle_timeout`.
    limit: Limit | None = None


#: The run stage's own clocks, as their watchdogs record them.
WALL_TIMEOUT = EndReason(Status.TIMEOUT, limit=Limit.WALL)
IDLE_TIMEOUT = EndReason(Status.IDLE_TIMEOUT, limit=Limit.IDLE)
#: A `prepare` ends once its program is compiled and kept.
COMPILED_ONLY = EndReason(Status.EXITED, "compiled ahead of its run; nothing was run")
#: Under gVisor a program that reaches its process limit takes the sandbox down with it.
PROCESS_LIMIT = EndReason(
    Status.KILLED,
    "the program started more processes than its limit allows (a fork bomb?),"
    " and the sandbox stopped it",
)


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Everything the `exit` message is made of, collected while the run went."""

    run_id: str
    stage: str
    reason: EndReason | None
    box_exit: BoxExit | None
    compile_exit_code: int | None
    wall_ms: int
    output_bytes: int
    truncated: bool
    memory_limit_mb: int
    correlation_id: str | int | None


def compile_failure(ended: CompileExit | None) -> EndReason | None:
    """Why a compile stage did not succeed, or None when the run stage may follow."""
    if ended is None:
        return EndReason(Status.TIMEOUT, "the compile stage ran out of time", Limit.WALL)
    if ended.oom_killed and (ended.exit_code != 0 or ended.box_stopped):
        return EndReason(Status.OOM, "the compiler reached the memory limit")
    if ended.box_stopped:
        return EndReason(Status.ERROR, "the sandbox stopped during the compile stage")
    if ended.exit_code is None:
        return EndReason(Status.COMPILE_ERROR, "the compiler ended without an exit code")
    if ended.exit_code != 0:
        return EndReason(Status.COMPILE_ERROR, f"the compiler exited with code {ended.exit_code}")
    return None


def classify(reason: EndReason | None, box_exit: BoxExit | None) -> EndReason:
    """The exit status: our recorded reason wins, then OOM, then the exit code."""
    if reason is not None:
        return reason
    if box_exit is None:
        return EndReason(Status.ERROR, "the run ended without an exit status")
    if box_exit.process_limit_reached:
        return PROCESS_LIMIT
    if box_exit.oom_killed and box_exit.signal == "SIGKILL":
        return EndReason(Status.OOM, "the program reached its memory limit")
    if box_exit.oom_killed:
        return EndReason(Status.EXITED, "a child process was killed by the memory limit")
    return EndReason(Status.EXITED)


def exit_message(facts: RunFacts) -> Exit:
    """The one `exit` of a run."""
    verdict = classify(facts.reason, facts.box_exit)
    box_exit = facts.box_exit
    usage = box_exit.usage if box_exit else None
    memory_peak = usage.memory_peak_bytes if usage else None
    if verdict.status is Status.OOM:
        # The cgroup vanishes with the container, often before a last
        # sample; reaching the limit is what an OOM kill means.
        memory_peak = max(memory_peak or 0, facts.memory_limit_mb * MIB)
    return Exit(
        run_id=facts.run_id,
        stage="compile" if facts.stage == "compile" else "run",
        status=verdict.status,
        exit_code=box_exit.exit_code if box_exit else facts.compile_exit_code,
        signal=box_exit.signal if box_exit and verdict.status is Status.EXITED else None,
        wall_ms=facts.wall_ms,
        cpu_ms=usage.cpu_ns // 1_000_000 if usage and usage.cpu_ns is not None else None,
        memory_peak_bytes=memory_peak,
        output_bytes=facts.output_bytes,
        truncated=facts.truncated,
        limit=verdict.limit,
        message=verdict.message,
        id=facts.correlation_id,
    )
