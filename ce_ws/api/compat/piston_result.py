"""Piston v2's results: our `ExecuteResponse` and `exit` in Piston's terms, and its refusals.

Pure translation, shared by `POST /piston/api/v2/execute` and `/connect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ce_ws.api.compat.piston_wire import PistonLanguage
from ce_ws.api.http import error_response
from ce_ws.errors import CeError
from ce_ws.protocol import CompileResult, ExecuteResponse, ServerMessage, Status

#: isolate's status codes, which Piston passes on, for how a stage ended.
_ISOLATE_STATUS = {
    Status.TIMEOUT: "TO",
    Status.IDLE_TIMEOUT: "TO",
    Status.OUTPUT_LIMIT: "OL",
    Status.OOM: "SG",
    Status.KILLED: "SG",
}


@dataclass(frozen=True, slots=True)
class StageEnd:
    """How a stage ended, in Piston's terms."""

    code: int | None
    signal: str | None
    status: str | None


def stage_end(status: Status, exit_code: int | None, signal: str | None) -> StageEnd:
    """Piston's `code`, `signal` and `status` for our status: a code only when no signal."""
    if status in (Status.EXITED, Status.COMPILE_ERROR):
        if signal is not None:
            return StageEnd(None, signal, "SG")
        return StageEnd(exit_code, None, None if exit_code == 0 else "RE")
    if status is Status.ERROR:
        return StageEnd(None, None, "XX")
    return StageEnd(None, "SIGKILL", _ISOLATE_STATUS[status])


class PistonStage(ServerMessage):
    """`run` or `compile`: Piston's fields, plus `ce_status` (ours: `oom` apart from a crash)."""

    stdout: str
    stderr: str
    output: str
    code: int | None
    signal: str | None
    message: str | None
    status: str | None
    memory: int | None
    cpu_time: int | None
    wall_time: int | None
    ce_status: Status


class PistonResult(ServerMessage):
    """The answer of `POST /piston/api/v2/execute`."""

    language: str
    version: str
    run: PistonStage
    compile: PistonStage | None = None
    omit_if_none = frozenset({"compile"})


class PistonError(ServerMessage):
    """Every refusal, as Piston words it."""

    message: str


def piston_error(error: CeError) -> web.Response:
    """A refusal as Piston's `{"message"}`, with our status and headers (Retry-After...)."""
    response = error_response(error)
    response.text = PistonError(message=error.message).to_json()
    return response


def _compile_failed(compiled: CompileResult) -> bool:
    return compiled.status is not Status.EXITED or compiled.exit_code != 0


def _stage(response: ExecuteResponse, status: Status, **streams: str) -> PistonStage:
    """A stage that ended the run: its end and the run's measurements."""
    end = stage_end(status, response.exit_code, response.signal)
    return PistonStage(
        **streams,
        code=end.code,
        signal=end.signal,
        message=response.message,
        status=end.status,
        memory=response.memory_peak_bytes,
        cpu_time=response.cpu_ms,
        wall_time=response.wall_ms,
        ce_status=status,
    )


def _compile_stage(response: ExecuteResponse, compiled: CompileResult) -> PistonStage:
    """The compiler's output is one stream here: given as its stderr (where compilers write)."""
    streams: dict[str, Any] = {"stdout": "", "stderr": compiled.output, "output": compiled.output}
    if _compile_failed(compiled):
        return _stage(response, compiled.status, **streams)
    return PistonStage(
        **streams, code=0, signal=None, message=None, status=None,
        memory=None, cpu_time=None, wall_time=None, ce_status=Status.EXITED,
    )  # fmt: skip


def piston_result(response: ExecuteResponse, language: PistonLanguage) -> PistonResult:
    """Our result as Piston's; when the compile stage failed, `run` is a copy of it (as Piston's)."""
    compiled = _compile_stage(response, response.compile) if response.compile else None
    failed = response.compile is not None and _compile_failed(response.compile)
    run = (
        compiled
        if failed and compiled is not None
        else _stage(
            response,
            response.status,
            stdout=response.stdout,
            stderr=response.stderr,
            output=response.output,
        )
    )
    return PistonResult(
        language=language.runtime.language, version=response.version, run=run, compile=compiled
    )
