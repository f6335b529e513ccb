"""Judge0 CE 1.13.1's catalogue and verdicts, mapped onto ours: pure functions, no I/O.

Language ids, the status table with its signal mapping, `/config_info`
computed from our limits (capped by our maxima), a submission's limits as
our `LimitRequest`, and an `ExecuteResponse` as Judge0's result.
"""

from __future__ import annotations

import math
import shlex
import signal
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from ce_ws.config import (
    MIB,
    MIN_MEMORY_MB,
    MIN_OUTPUT_BYTES,
    MIN_PIDS,
    MIN_WALL_MS,
    RunLimits,
    Settings,
)
from ce_ws.languages import Language, LanguageTable
from ce_ws.protocol import ExecuteResponse, LimitRequest, Status

JUDGE0_VERSION = "1.13.1"
KIB = 1024

#: Our language → its Judge0 CE 1.13.1 ids (the first is listed; the others,
#: older compiler versions of the same language, are accepted too) and the
#: name `/languages` shows, with our version.
_JUDGE0_IDS: dict[str, tuple[tuple[int, ...], str]] = {
    "bash": ((46,), "Bash ({version})"),
    "c": ((50, 48, 49), "C (GCC {version})"),
    "cpp": ((52, 53, 54), "C++ (GCC {version})"),
    "javascript": ((63,), "JavaScript (Node.js {version})"),
    "python": ((71,), "Python ({version})"),
    "ruby": ((72,), "Ruby ({version})"),
}


class Judge0Status(IntEnum):
    """Judge0's status ids (`app/enumerations/status.rb`)."""

    IN_QUEUE = 1
    PROCESSING = 2
    ACCEPTED = 3
    WRONG_ANSWER = 4
    TIME_LIMIT_EXCEEDED = 5
    COMPILATION_ERROR = 6
    SIGSEGV = 7
    SIGXFSZ = 8
    SIGFPE = 9
    SIGABRT = 10
    NZEC = 11
    OTHER = 12
    INTERNAL_ERROR = 13
    EXEC_FORMAT_ERROR = 14

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def ended(self) -> bool:
        return self not in (Judge0Status.IN_QUEUE, Judge0Status.PROCESSING)


_DESCRIPTIONS = {
    Judge0Status.IN_QUEUE: "In Queue",
    Judge0Status.PROCESSING: "Processing",
    Judge0Status.ACCEPTED: "Accepted",
    Judge0Status.WRONG_ANSWER: "Wrong Answer",
    Judge0Status.TIME_LIMIT_EXCEEDED: "Time Limit Exceeded",
    Judge0Status.COMPILATION_ERROR: "Compilation Error",
    Judge0Status.SIGSEGV: "Runtime Error (SIGSEGV)",
    Judge0Status.SIGXFSZ: "Runtime Error (SIGXFSZ)",
    Judge0Status.SIGFPE: "Runtime Error (SIGFPE)",
    Judge0Status.SIGABRT: "Runtime Error (SIGABRT)",
    Judge0Status.NZEC: "Runtime Error (NZEC)",
    Judge0Status.OTHER: "Runtime Error (Other)",
    Judge0Status.INTERNAL_ERROR: "Internal Error",
    Judge0Status.EXEC_FORMAT_ERROR: "Exec Format Error",
}
_BY_SIGNAL = {
    signal.SIGSEGV: Judge0Status.SIGSEGV,
    signal.SIGXFSZ: Judge0Status.SIGXFSZ,
    signal.SIGFPE: Judge0Status.SIGFPE,
    signal.SIGABRT: Judge0Status.SIGABRT,
}


def status_of_signal(number: int) -> Judge0Status:
    """Judge0's runtime error for a program ended by signal `number`."""
    return _BY_SIGNAL.get(signal.Signals(number), Judge0Status.OTHER)


@dataclass(frozen=True, slots=True)
class Judge0Language:
    """One of our languages under one Judge0 id."""

    id: int
    name: str
    language: Language

    def detail(self) -> dict[str, Any]:
        """`GET /languages/{id}`: Judge0's `LanguageSerializer` fields."""
        entry = self.language.entry_file
        compiled = self.language.compile_argv([entry]) if self.language.compiled else None
        return {
            "id": self.id,
            "name": self.name,
            "is_archived": False,
            "source_file": entry,
            "compile_cmd": shlex.join(compiled) if compiled else None,
            "run_cmd": shlex.join(self.language.run_argv(entry)),
        }


class Judge0Languages:
    """Our languages by Judge0 id; `listed` has one id per language."""

    def __init__(self, languages: LanguageTable) -> None:
        self.by_id: dict[int, Judge0Language] = {}
        self.listed: list[Judge0Language] = []
        for language in languages:
            if language.name not in _JUDGE0_IDS:
                continue  # a language Judge0 CE does not have: no id to give it
            ids, label = _JUDGE0_IDS[language.name]
            name = label.format(version=language.version)
            entries = [Judge0Language(id=id_, name=name, language=language) for id_ in ids]
            self.listed.append(entries[0])
            self.by_id.update((entry.id, entry) for entry in entries)
        self.listed.sort(key=lambda entry: entry.id)


# -- limits -----------------------------------------------------------------


class Judge0Limits(BaseModel):
    """Judge0's limit fields of a submission, each with its default applied (Judge0's units)."""

    model_config = ConfigDict(frozen=True)

    cpu_time_limit: float  # seconds
    cpu_extra_time: float  # seconds
    wall_time_limit: float  # seconds
    memory_limit: int  # KiB
    stack_limit: int  # KiB
    max_processes_and_or_threads: int
    max_file_size: int  # KiB


@dataclass(frozen=True, slots=True)
class LimitRange:
    """A Judge0 limit field: its default, its bounds and the message of each."""

    field: str
    default: float
    minimum: float
    maximum: float
    above_minimum: bool = False  # Judge0 says "greater than" (else "greater than or equal to")


def limit_ranges(settings: Settings) -> list[LimitRange]:
    """Judge0's limit fields with their defaults and maxima, from our defaults and maxima."""
    defaults, maxima = settings.defaults, settings.maxima
    return [
        LimitRange("cpu_time_limit", defaults.wall_ms / 1000, 0, maxima.wall_ms / 1000),
        LimitRange("cpu_extra_time", 0, 0, maxima.wall_ms / 1000),
        LimitRange("wall_time_limit", defaults.wall_ms / 1000, 1, maxima.wall_ms / 1000),
        LimitRange("memory_limit", defaults.memory_mb * KIB, 2048, maxima.memory_mb * KIB),
        LimitRange("stack_limit", defaults.memory_mb * KIB, 0, maxima.memory_mb * KIB),
        LimitRange("max_processes_and_or_threads", defaults.pids, 0, maxima.pids, True),
        LimitRange("max_file_size", defaults.output_bytes // KIB, 0, maxima.output_bytes // KIB),
    ]


def our_limits(limits: Judge0Limits, maxima: RunLimits) -> LimitRequest:
    """A submission's limits as ours: one clock (wall), floors raised, within our maxima.

    The run gets the shorter of the wall time limit and the CPU time limit
    plus its extra time (the program has one CPU, so CPU time cannot
    outrun the wall clock); the idle clock never ends it before that.
    """
    seconds = min(limits.wall_time_limit, limits.cpu_time_limit + limits.cpu_extra_time)
    wall_ms = min(max(MIN_WALL_MS, round(seconds * 1000)), maxima.wall_ms)
    return LimitRequest(
        wall_ms=wall_ms,
        idle_ms=min(wall_ms, maxima.idle_ms),
        memory_mb=min(max(MIN_MEMORY_MB, math.ceil(limits.memory_limit / KIB)), maxima.memory_mb),
        pids=min(max(MIN_PIDS, limits.max_processes_and_or_threads), maxima.pids),
        output_bytes=min(max(MIN_OUTPUT_BYTES, limits.max_file_size * KIB), maxima.output_bytes),
    )


def config_info(settings: Settings) -> dict[str, Any]:
    """`GET /config_info`: every key of Judge0's `Config` (39), as this server behaves."""
    ranges = {limit.field: limit for limit in limit_ranges(settings)}

    def pair(field: str, maximum_key: str) -> dict[str, float]:
        return {field: ranges[field].default, maximum_key: ranges[field].maximum}

    return {
        "maintenance_mode": False,
        "enable_wait_result": True,
        "enable_compiler_options": False,
        "allowed_languages_for_compile_options": [],
        "enable_command_line_arguments": True,
        "enable_submission_delete": False,
        "enable_callbacks": False,
        "callbacks_max_tries": 0,
        "callbacks_timeout": 0.0,
        "enable_additional_files": False,
        "max_queue_size": settings.judge0.max_queue,
        **pair("cpu_time_limit", "max_cpu_time_limit"),
        **pair("cpu_extra_time", "max_cpu_extra_time"),
        **pair("wall_time_limit", "max_wall_time_limit"),
        **pair("memory_limit", "max_memory_limit"),
        **pair("stack_limit", "max_stack_limit"),
        **pair("max_processes_and_or_threads", "max_max_processes_and_or_threads"),
        "enable_per_process_and_thread_time_limit": False,
        "allow_enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "allow_enable_per_process_and_thread_memory_limit": False,
        **pair("max_file_size", "max_max_file_size"),
        "number_of_runs": 1,
        "max_number_of_runs": 1,
        "redirect_stderr_to_stdout": False,
        "max_extract_size": 0,
        "enable_batched_submissions": True,
        "max_submission_batch_size": settings.judge0.max_batch,
        "submission_cache_duration": 0.0,
        "use_docs_as_homepage": False,
        "allow_enable_network": False,
        "enable_network": False,
    }


# -- verdicts ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Judge0Result:
    """What a run left in a submission, in Judge0's terms and units."""

    status: Judge0Status
    time: float | None = None  # CPU seconds
    wall_time: float | None = None
    memory: int | None = None  # KiB
    stdout: bytes | None = None
    stderr: bytes | None = None
    compile_output: bytes | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    message: str | None = None


def _text(value: str | None) -> bytes | None:
    """Judge0 reports empty output as null."""
    return value.encode() if value else None


def _judge0_strip(text: bytes | None) -> bytes | None:
    """Judge0's comparison form: trailing blanks of each line and of the whole removed."""
    if text is None:
        return None
    return b"\n".join(line.rstrip() for line in text.split(b"\n")).rstrip()


def answer_status(stdout: bytes | None, expected_output: bytes | None) -> Judge0Status:
    """Accepted, or Wrong Answer when an expected output was given and differs."""
    if expected_output is None or _judge0_strip(expected_output) == _judge0_strip(stdout):
        return Judge0Status.ACCEPTED
    return Judge0Status.WRONG_ANSWER


def _compile_failure(response: ExecuteResponse) -> Judge0Result | None:
    """Judge0's result of a compile stage that did not succeed, or None."""
    compiled = response.compile
    if compiled is None or (compiled.status is Status.EXITED and compiled.exit_code == 0):
        return None
    if compiled.status in (Status.ERROR, Status.KILLED):
        return Judge0Result(Judge0Status.INTERNAL_ERROR, message=response.message)
    output = compiled.output
    if compiled.status is Status.TIMEOUT:
        output = "Compilation time limit exceeded."
    elif compiled.status is Status.OOM:
        output = f"{output}\n{response.message or 'the compiler reached the memory limit'}"
    return Judge0Result(Judge0Status.COMPILATION_ERROR, compile_output=_text(output))


def _signal_number(name: str | None) -> int | None:
    if name is None or name not in signal.Signals.__members__:
        return None
    return signal.Signals[name].value


def _run_status(
    response: ExecuteResponse, stdout: bytes | None, expected_output: bytes | None
) -> tuple[Judge0Status, int | None, str | None]:
    """Judge0's status, exit signal and message of a run stage that ended as `response` says."""
    match response.status:
        case Status.TIMEOUT | Status.IDLE_TIMEOUT:
            return Judge0Status.TIME_LIMIT_EXCEEDED, None, "Time limit exceeded"
        case Status.OOM:
            memory_mb = (response.memory_peak_bytes or 0) // MIB
            message = f"Memory limit exceeded: the program reached its memory limit ({memory_mb} MiB) and was killed"
            return Judge0Status.OTHER, signal.SIGKILL.value, message
        case Status.OUTPUT_LIMIT:
            message = "Output limit exceeded: the program wrote more than its max_file_size"
            return Judge0Status.SIGXFSZ, signal.SIGXFSZ.value, message
        case Status.KILLED:
            return Judge0Status.OTHER, signal.SIGKILL.value, response.message
        case Status.ERROR | Status.COMPILE_ERROR:
            return Judge0Status.INTERNAL_ERROR, None, response.message
        case Status.EXITED:
            number = _signal_number(response.signal)
            if number is not None:
                return status_of_signal(number), number, f"Caught fatal signal {number}"
            if response.exit_code:
                message = f"Exited with error status {response.exit_code}"
                return Judge0Status.NZEC, None, message
            return answer_status(stdout, expected_output), None, None


def judge0_result(
    response: ExecuteResponse, *, expected_output: bytes | None, redirect_stderr: bool
) -> Judge0Result:
    """A run's `ExecuteResponse` as Judge0 reports it (`isolate_job.rb` `verify`)."""
    failed = _compile_failure(response)
    if failed is not None:
        return failed
    stdout = _text(response.output if redirect_stderr else response.stdout)
    status, exit_signal, message = _run_status(response, stdout, expected_output)
    return Judge0Result(
        status=status,
        time=response.cpu_ms / 1000 if response.cpu_ms is not None else None,
        wall_time=response.wall_ms / 1000,
        memory=response.memory_peak_bytes // KIB if response.memory_peak_bytes else None,
        stdout=stdout,
        stderr=None if redirect_stderr else _text(response.stderr),
        compile_output=_text(response.compile.output) if response.compile else None,
        # Judge0 reports exit code 0 for a program a signal ended.
        exit_code=0 if exit_signal is not None else (response.exit_code or 0),
        exit_signal=exit_signal,
        message=message,
    )
