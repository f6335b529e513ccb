"""The Judge0 surface's pure parts: ids, statuses, limits, verdicts, parsing, views, the store."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from pathlib import Path
from typing import Any

import judge0
import pytest
from judge0.base_types import Config
from judge0.data import LANGUAGE_TO_LANGUAGE_ID

from ce_ws.api.compat.judge0_mapping import (
    JUDGE0_VERSION,
    Judge0Languages,
    Judge0Limits,
    Judge0Result,
    Judge0Status,
    config_info,
    judge0_result,
    our_limits,
    status_of_signal,
)
from ce_ws.api.compat.judge0_service import Judge0Service
from ce_ws.api.compat.judge0_store import INTERRUPTED, Judge0Store, Judge0Submission
from ce_ws.api.compat.judge0_views import (
    ALL_FIELDS,
    DEFAULT_FIELDS,
    parse_fields,
    submission_view,
)
from ce_ws.api.compat.judge0_wire import Judge0Invalid, Judge0Refusal, parse_submission
from ce_ws.config import Judge0Settings, RunMaxima, Settings
from ce_ws.languages import load_languages
from ce_ws.logs import EventLog
from ce_ws.metrics import Metrics
from ce_ws.protocol import CompileResult, ExecuteResponse, Status
from ce_ws.runs.runner import Client, Runner
from ce_ws.sandbox.base import BoxExit, BoxPlan, Usage
from ce_ws.telemetry import Telemetry
from ce_ws.types import STDOUT
from tests.helpers import eventually

LANGUAGES = Judge0Languages(load_languages())
SETTINGS = Settings()


# -- ids and statuses -------------------------------------------------------


def test_each_language_has_its_judge0_ce_id_and_the_sdk_aliases_resolve_to_listed_ones() -> None:
    listed = {entry.id: entry.language.name for entry in LANGUAGES.listed}
    assert listed == {46: "bash", 50: "c", 52: "cpp", 63: "javascript", 71: "python", 72: "ruby"}
    ids = LANGUAGE_TO_LANGUAGE_ID[JUDGE0_VERSION]
    for alias in (judge0.PYTHON, judge0.C, judge0.CPP, judge0.JAVASCRIPT, judge0.BASH, judge0.RUBY):
        assert ids[alias] in listed
    assert LANGUAGES.by_id[54].language.name == "cpp"  # an older GCC id, accepted too


def test_a_language_detail_names_its_commands() -> None:
    detail = LANGUAGES.by_id[50].detail()
    assert detail["source_file"] == "main.c"
    assert detail["compile_cmd"].startswith("gcc ")
    assert detail["run_cmd"] == "/tmp/main"
    assert LANGUAGES.by_id[71].detail()["compile_cmd"] is None


@pytest.mark.parametrize(
    ("number", "status"),
    [(11, 7), (25, 8), (8, 9), (6, 10), (9, 12), (15, 12)],
)
def test_signals_map_as_judge0_maps_them(number: int, status: int) -> None:
    assert status_of_signal(number) == status


def test_statuses_are_judge0s_fourteen() -> None:
    assert [status.value for status in Judge0Status] == list(range(1, 15))
    assert Judge0Status.SIGSEGV.description == "Runtime Error (SIGSEGV)"
    assert not Judge0Status.PROCESSING.ended and Judge0Status.ACCEPTED.ended


# -- limits and config_info -------------------------------------------------


def test_config_info_is_complete_for_the_sdk_and_reflects_our_limits() -> None:
    settings = Settings(
        defaults={"wall_ms": 5000, "memory_mb": 128}, maxima={"wall_ms": 20_000, "memory_mb": 512}
    )
    info = config_info(settings)
    Config(**info)  # every one of the SDK's 40 keys, each of its type
    assert set(info) == set(Config.model_fields)  # 39 (clients.md says 40; it is 39)
    assert info["wall_time_limit"] == 5 and info["max_wall_time_limit"] == 20
    assert info["memory_limit"] == 128 * 1024 and info["max_memory_limit"] == 512 * 1024
    assert info["max_submission_batch_size"] == settings.judge0.max_batch
    assert info["enable_network"] is False and info["allow_enable_network"] is False


def _limits(**changes: float) -> Judge0Limits:
    values = {
        "cpu_time_limit": 5.0,
        "cpu_extra_time": 1.0,
        "wall_time_limit": 10.0,
        "memory_limit": 128_000,
        "stack_limit": 64_000,
        "max_processes_and_or_threads": 60,
        "max_file_size": 1024,
    }
    return Judge0Limits.model_validate({**values, **changes})


def test_limits_take_the_shorter_clock_and_our_units() -> None:
    ours = our_limits(_limits(), RunMaxima())
    assert ours.wall_ms == 6000  # 5 s of CPU time plus 1 s extra, shorter than 10 s of wall
    assert ours.idle_ms == 6000
    assert ours.memory_mb == 125
    assert ours.pids == 60
    assert ours.output_bytes == 1024 * 1024


def test_limits_below_our_floors_are_raised_and_above_our_maxima_capped() -> None:
    low = our_limits(
        _limits(cpu_time_limit=0, cpu_extra_time=0, memory_limit=2048, max_file_size=0),
        RunMaxima(),
    )
    assert (low.wall_ms, low.memory_mb, low.output_bytes) == (100, 16, 1)
    maxima = RunMaxima(wall_ms=2000, memory_mb=64, pids=16)
    high = our_limits(_limits(memory_limit=10**6, max_processes_and_or_threads=999), maxima)
    assert (high.wall_ms, high.memory_mb, high.pids) == (2000, 64, 16)


# -- verdicts ---------------------------------------------------------------


def _response(**fields: Any) -> ExecuteResponse:
    values: dict[str, Any] = {
        "run_id": "r",
        "language": "python",
        "version": "3",
        "status": Status.EXITED,
        "exit_code": 0,
        "signal": None,
        "stdout": "hello \n\n",
        "stderr": "",
        "output": "hello \n\n",
        "wall_ms": 120,
        "cpu_ms": 12,
        "memory_peak_bytes": 3 * 1024 * 1024,
        "output_bytes": 8,
        "truncated": False,
    }
    return ExecuteResponse(**{**values, **fields})


def _judged(response: ExecuteResponse, expected: bytes | None = None) -> Judge0Result:
    return judge0_result(response, expected_output=expected, redirect_stderr=False)


def test_an_answer_is_compared_as_judge0_compares_it() -> None:
    accepted = _judged(_response(), expected=b"hello")
    assert accepted.status is Judge0Status.ACCEPTED
    assert (accepted.time, accepted.wall_time, accepted.memory) == (0.012, 0.12, 3072)
    assert accepted.stderr is None  # empty output is null
    assert _judged(_response(), expected=b"hullo").status is Judge0Status.WRONG_ANSWER
    assert _judged(_response()).status is Judge0Status.ACCEPTED


def test_a_non_zero_exit_is_nzec_with_its_code() -> None:
    result = _judged(_response(exit_code=3))
    assert (result.status, result.exit_code, result.exit_signal) == (Judge0Status.NZEC, 3, None)


def test_a_signal_is_its_runtime_error_with_exit_code_zero_as_judge0_reports_it() -> None:
    result = _judged(_response(exit_code=139, signal="SIGSEGV"))
    assert (result.status, result.exit_code, result.exit_signal) == (Judge0Status.SIGSEGV, 0, 11)


@pytest.mark.parametrize(
    ("status", "judge0_status"),
    [
        (Status.TIMEOUT, Judge0Status.TIME_LIMIT_EXCEEDED),
        (Status.IDLE_TIMEOUT, Judge0Status.TIME_LIMIT_EXCEEDED),
        (Status.OUTPUT_LIMIT, Judge0Status.SIGXFSZ),
        (Status.KILLED, Judge0Status.OTHER),
        (Status.ERROR, Judge0Status.INTERNAL_ERROR),
    ],
)
def test_our_endings_map_to_judge0s(status: Status, judge0_status: Judge0Status) -> None:
    assert _judged(_response(status=status, exit_code=None)).status is judge0_status


def test_oom_is_runtime_error_other_saying_it_was_the_memory_limit() -> None:
    result = _judged(_response(status=Status.OOM, exit_code=137, memory_peak_bytes=64 << 20))
    assert result.status is Judge0Status.OTHER
    assert result.message is not None and "memory limit" in result.message.lower()
    assert "64 MiB" in result.message


def test_a_failed_compile_is_compilation_error_with_its_output() -> None:
    failed = CompileResult(status=Status.COMPILE_ERROR, exit_code=1, output="main.c: error\n")
    result = _judged(_response(status=Status.COMPILE_ERROR, exit_code=1, compile=failed))
    assert result.status is Judge0Status.COMPILATION_ERROR
    assert result.compile_output == b"main.c: error\n"
    assert result.stdout is None and result.time is None
    slow = CompileResult(status=Status.TIMEOUT, exit_code=None, output="")
    timed_out = _judged(_response(status=Status.TIMEOUT, compile=slow))
    assert timed_out.compile_output == b"Compilation time limit exceeded."


def test_stderr_redirected_to_stdout_is_the_interleaved_output() -> None:
    response = _response(stdout="a", stderr="b", output="ab")
    result = judge0_result(response, expected_output=None, redirect_stderr=True)
    assert (result.stdout, result.stderr) == (b"ab", None)


# -- parsing ----------------------------------------------------------------


def _parse(data: object, *, encoded: bool = False) -> Any:
    return parse_submission(data, encoded=encoded, settings=SETTINGS, languages=LANGUAGES)


def _errors(data: object, *, encoded: bool = False) -> dict[str, list[str]]:
    with pytest.raises(Judge0Invalid) as caught:
        _parse(data, encoded=encoded)
    assert caught.value.status == HTTPStatus.UNPROCESSABLE_ENTITY
    return caught.value.errors


def test_a_submission_without_code_or_language_gets_judge0s_field_errors() -> None:
    assert _errors({}) == {"source_code": ["can't be blank"], "language_id": ["can't be blank"]}
    assert _errors([1, 2]) == _errors({})  # not an object: Rails sees no fields
    assert _errors({"source_code": "x", "language_id": 9999}) == {
        "language_id": ["language with id 9999 doesn't exist"]
    }


def test_wrong_types_and_out_of_range_limits_are_field_errors() -> None:
    assert _errors({"source_code": "x", "language_id": "abc"}) == {
        "language_id": ["is not a number"]
    }
    assert _errors({"source_code": "x", "language_id": True}) == {
        "language_id": ["is not a number"]
    }
    assert _errors({"source_code": "x", "language_id": 71, "redirect_stderr_to_stdout": 1}) == {
        "redirect_stderr_to_stdout": ["is not a boolean"]
    }
    assert (
        _parse({"source_code": "x", "language_id": "71", "wall_time_limit": "2"}).language.id == 71
    )
    errors = _errors(
        {"source_code": "x", "language_id": 71, "memory_limit": 10, "wall_time_limit": 10**6}
    )
    assert errors["memory_limit"] == ["must be greater than or equal to 2048"]
    assert errors["wall_time_limit"] == ["must be less than or equal to 600"]


def test_options_this_server_does_not_offer_are_refused_as_judge0_refuses_them() -> None:
    errors = _errors(
        {"source_code": "x", "language_id": 71, "enable_network": True, "compiler_options": "-O3",
         "additional_files": "UEsFBg==", "number_of_runs": 2}
    )  # fmt: skip
    assert errors["enable_network"] == ["enabling network is not allowed"]
    assert errors["compiler_options"] == ["setting compiler options is not allowed"]
    assert errors["additional_files"] == ["setting additional files is not allowed"]
    assert errors["number_of_runs"] == ["must be 1"]


def test_base64_fields_are_decoded_and_limits_defaulted_from_ours() -> None:
    code = base64.b64encode(b"print(input())").decode()
    parsed = _parse(
        {"source_code": code, "language_id": "71", "stdin": "aGk=", "command_line_arguments": "a 'b c'"},
        encoded=True,
    )  # fmt: skip
    assert (parsed.source_code, parsed.stdin) == (b"print(input())", b"hi")
    assert parsed.args == ["a", "b c"]
    assert parsed.limits.wall_time_limit == SETTINGS.defaults.wall_ms / 1000
    request = parsed.run_request(SETTINGS)
    assert request.language == "python" and request.files is not None
    assert request.files[0].data() == b"print(input())" and request.stdin == "hi"
    assert _errors({"source_code": "abc", "language_id": 71}, encoded=True) == {
        "source_code": ["is not valid Base64"]
    }


def test_fields_are_checked_and_default_to_judge0s_eight() -> None:
    assert parse_fields(None) == DEFAULT_FIELDS
    assert parse_fields("*") == ALL_FIELDS
    assert parse_fields("status,stdout,") == ("stdout", "status")
    with pytest.raises(Judge0Refusal) as caught:
        parse_fields("stdout,queued_at,x")
    assert caught.value.body == {"error": "invalid fields: [queued_at, x]"}


# -- views ------------------------------------------------------------------


def _submission(**changes: Any) -> Judge0Submission:
    values: dict[str, Any] = {
        "token": "t",
        "language_id": 71,
        "source_code": b"print(1)",
        "stdin": None,
        "expected_output": None,
        "limits": _limits(),
        "number_of_runs": 1,
        "command_line_arguments": None,
        "redirect_stderr_to_stdout": False,
        "created_at": datetime.now(UTC),
    }
    return Judge0Submission(**{**values, **changes})


def test_the_sdk_reads_a_full_view_back_in_base64() -> None:
    ended = _submission().ended_with(
        Judge0Result(Judge0Status.ACCEPTED, time=0.01, stdout="héllo\n".encode(), message="m")
    )
    view = submission_view(ended, fields=ALL_FIELDS, encoded=True, languages=LANGUAGES)
    assert view["stdout"] == base64.b64encode("héllo\n".encode()).decode()
    assert view["message"] == "bQ=="  # Judge0 encodes the message too
    sdk = judge0.Submission()
    sdk.set_attributes(view)  # the SDK refuses any field it does not know
    assert (sdk.status, sdk.stdout, sdk.time) == (judge0.Status.ACCEPTED, "héllo\n", 0.01)
    assert sdk.created_at is not None and sdk.finished_at is not None


def test_text_that_is_not_utf8_needs_base64_as_judge0_says() -> None:
    ended = _submission().ended_with(Judge0Result(Judge0Status.ACCEPTED, stdout=b"\xff"))
    with pytest.raises(Judge0Refusal) as caught:
        submission_view(ended, fields=DEFAULT_FIELDS, encoded=False, languages=LANGUAGES)
    assert caught.value.status == HTTPStatus.BAD_REQUEST
    assert "base64_encoded=true" in caught.value.body["error"]


# -- the store --------------------------------------------------------------


def _store(path: Path, **settings: Any) -> Judge0Store:
    return Judge0Store(Judge0Settings(database=str(path), **settings))


async def test_a_kept_submission_answers_after_the_store_reopens(tmp_path: Path) -> None:
    database = tmp_path / "judge0.sqlite3"
    store = _store(database)
    ended = _submission(token="done").ended_with(Judge0Result(Judge0Status.ACCEPTED, stdout=b"1\n"))
    await store.put(ended)
    await store.put(_submission(token="running"))
    await store.aclose()
    reopened = _store(database)
    found = await reopened.get_many(["done", "running", "unknown"])
    await reopened.aclose()
    assert set(found) == {"done", "running"}
    assert found["done"].stdout == b"1\n" and found["done"].status is Judge0Status.ACCEPTED
    # Not over when its server stopped: it will never end, so it says so.
    assert found["running"].status is Judge0Status.INTERNAL_ERROR
    assert found["running"].message == INTERRUPTED


async def test_retention_keeps_the_newest_and_forgets_the_old(tmp_path: Path) -> None:
    store = _store(tmp_path / "judge0.sqlite3", max_submissions=2, max_age_s=60)
    old = datetime.now(UTC) - timedelta(seconds=120)
    await store.put(_submission(token="old", created_at=old))
    now = datetime.now(UTC)
    for index in range(3):
        await store.put(_submission(token=f"new{index}", created_at=now + timedelta(seconds=index)))
    found = await store.get_many(["old", "new0", "new1", "new2"])
    await store.aclose()
    assert set(found) == {"new1", "new2"}


async def test_an_unused_store_creates_no_file(tmp_path: Path) -> None:
    database = tmp_path / "judge0.sqlite3"
    store = _store(database)
    await store.end_unfinished()
    await store.aclose()
    assert not database.exists()


# -- the service's lifecycle, over a real Runner and a fake sandbox ---------


class _GatedBox:
    """A box whose program prints what it was given as stdin once `gate` opens."""

    box_id = "box"

    def __init__(self, gate: asyncio.Event) -> None:
        self._gate = gate
        self._stdin = b""
        self._stdin_closed = asyncio.Event()
        self._printed = False

    async def compile(self, argv: list[str], *, binary: str, timeout_s: float, sink: Any) -> None:
        raise AssertionError("python is not compiled")

    async def go(self, argv: list[str], *, in_launcher: bool = False) -> None:
        pass

    async def read(self) -> tuple[int, bytes] | None:
        await self._gate.wait()
        await self._stdin_closed.wait()
        if self._printed:
            return None
        self._printed = True
        return STDOUT, self._stdin

    async def write(self, data: bytes) -> None:
        self._stdin += data

    async def close_stdin(self) -> None:
        self._stdin_closed.set()

    async def resize(self, cols: int, rows: int) -> None:
        pass

    async def signal(self, name: str) -> None:
        pass

    async def kill(self) -> None:
        self._gate.set()
        self._stdin_closed.set()

    async def sample_usage(self) -> Usage:
        return Usage(memory_peak_bytes=1 << 20, cpu_ns=2_000_000)

    async def wait_exit(self) -> BoxExit:
        await self._gate.wait()
        return BoxExit(exit_code=0, signal=None, oom_killed=False, usage=await self.sample_usage())


class _GatedSandbox:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.opened = 0

    @contextlib.asynccontextmanager
    async def open_box(self, plan: BoxPlan) -> AsyncIterator[_GatedBox]:
        self.opened += 1
        yield _GatedBox(self.gate)


def _service(database: Path, sandbox: _GatedSandbox) -> tuple[Judge0Service, Runner]:
    settings = Settings(judge0={"database": str(database)}, capacity={"max_runs_per_client": 1})
    runner = Runner(
        settings,
        sandbox,
        languages=load_languages(),
        telemetry=Telemetry(Metrics(), EventLog()),
    )
    store = Judge0Store(settings.judge0)
    return Judge0Service(store=store, runner=runner, settings=settings), runner


async def _status(service: Judge0Service, token: str) -> Judge0Status:
    return (await service.get_many([token]))[token].status


async def test_a_submission_goes_in_queue_processing_then_its_result_is_kept(
    tmp_path: Path,
) -> None:
    sandbox = _GatedSandbox()
    service, runner = _service(tmp_path / "judge0.sqlite3", sandbox)
    client = Client(key="10.0.0.1", via="judge0")
    first = await service.submit(
        _parse({"source_code": "x", "language_id": 71, "stdin": "a"}), client
    )
    second = await service.submit(
        _parse({"source_code": "x", "language_id": 71, "stdin": "b"}), client
    )
    await eventually(lambda: sandbox.opened == 1, what="the first run started")

    async def first_processing() -> bool:
        return await _status(service, first.token) is Judge0Status.PROCESSING

    await eventually(first_processing, what="the first submission is Processing")
    # One run at a time for this client: the second waits here, In Queue.
    assert await _status(service, second.token) is Judge0Status.IN_QUEUE
    sandbox.gate.set()
    ended = await service.ended(second)
    assert (ended.status, ended.stdout) == (Judge0Status.ACCEPTED, b"b")
    await runner.aclose(grace_s=1)
    await service.aclose(grace_s=1)
    reopened, _ = _service(tmp_path / "judge0.sqlite3", sandbox)
    kept = await reopened.get_many([first.token, second.token])
    await reopened.aclose(grace_s=0)
    assert kept[first.token].stdout == b"a" and kept[first.token].time == 0.002


async def test_at_shutdown_no_submission_is_left_in_queue(tmp_path: Path) -> None:
    sandbox = _GatedSandbox()
    service, runner = _service(tmp_path / "judge0.sqlite3", sandbox)
    client = Client(key="10.0.0.1", via="judge0")
    tokens = [
        (await service.submit(_parse({"source_code": "x", "language_id": 71}), client)).token
        for _ in range(2)
    ]
    await eventually(lambda: sandbox.opened == 1, what="the first run started")
    await runner.aclose(grace_s=1)  # as the app's shutdown does, before the service's
    await service.aclose(grace_s=1)
    reopened, _ = _service(tmp_path / "judge0.sqlite3", sandbox)
    kept = await reopened.get_many(tokens)
    await reopened.aclose(grace_s=0)
    assert [kept[token].status for token in tokens] == [Judge0Status.INTERNAL_ERROR] * 2
    assert all(kept[token].message for token in tokens)
