"""The Piston surface's pure logic: names, versions, jobs, limits, results (no engine)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from ce_ws.api.app import create_app
from ce_ws.api.compat.piston import openapi_document
from ce_ws.api.compat.piston_result import piston_result, stage_end
from ce_ws.api.compat.piston_wire import (
    find_language,
    parse_job,
    piston_languages,
    run_limits,
    run_request,
)
from ce_ws.api.compat.piston_ws import PistonSocket
from ce_ws.api.compat.semver import parse_version, satisfies
from ce_ws.api.guards import WEBSOCKET_ROUTE
from ce_ws.config import MIB, Settings
from ce_ws.errors import BadMessage, CeError, LimitExceeded, UnknownLanguage
from ce_ws.languages import load_languages
from ce_ws.protocol import CompileResult, ExecuteResponse, Exit, Queued, Stage, Started, Status
from ce_ws.types import STDERR, STDOUT

LANGUAGES = load_languages()


@pytest.mark.parametrize(
    ("spec", "matches"),
    [
        ("*", True), ("", True), ("x", True), ("3.11.2", True), ("3.11", True), ("3", True),
        ("3.x", True), ("3.11.x", True), ("v3.11.2", True), ("=3.11.2", True),
        ("3.12", False), ("2", False), ("3.11.3", False),
        ("^3.10", True), ("^3.12", False), ("^2", False), ("~3.11", True), ("~3.11.3", False),
        (">=3.11", True), (">3.11", False), (">3.10", True), ("<3.11", False), ("<=3.11", True),
        ("<3.12.0", True), (">= 3.0 < 4", True), (">=3.12 || 3.11.x", True), ("2 || 4", False),
        ("3.9 - 3.12", True), ("3.0 - 3.10", False), ("latest", False), ("3.11.2.1", False),
    ],
)  # fmt: skip
def test_version_ranges_read_as_npm_reads_them(spec: str, matches: bool) -> None:
    assert satisfies("3.11.2", spec) is matches


def test_caret_on_zero_versions_fixes_the_first_non_zero_number() -> None:
    assert satisfies("0.2.5", "^0.2.3") and not satisfies("0.3.0", "^0.2.3")
    assert satisfies("0.0.3", "^0.0.3") and not satisfies("0.0.4", "^0.0.3")
    assert parse_version("3.11") is None


def test_runtimes_use_pistons_names_and_our_versions() -> None:
    runtimes = {entry.runtime.language: entry.runtime for entry in piston_languages(LANGUAGES)}
    assert set(runtimes) == {"python", "javascript", "c", "c++", "bash", "ruby"}
    assert runtimes["c++"].version == LANGUAGES.resolve("cpp").version
    assert runtimes["c++"].runtime == "gcc" and "cpp" in runtimes["c++"].aliases
    assert runtimes["javascript"].runtime == "node"
    assert runtimes["python"].to_data().keys() == {"language", "version", "aliases"}
    assert "c++" not in runtimes["c++"].aliases  # a name is not its own alias


@pytest.mark.parametrize(
    ("name", "ours"),
    [("python", "python"), ("py3", "python"), ("js", "javascript"), ("node-js", "javascript"),
     ("c++", "cpp"), ("g++", "cpp"), ("gcc", "c"), ("sh", "bash"), ("rb", "ruby"), ("nodejs", "javascript")],
)  # fmt: skip
def test_pistons_names_and_aliases_find_our_languages(name: str, ours: str) -> None:
    assert find_language(LANGUAGES, name, "*").language.name == ours


def test_an_unknown_runtime_is_refused_in_pistons_words() -> None:
    with pytest.raises(UnknownLanguage, match=r"^python-2\.7 runtime is unknown$"):
        find_language(LANGUAGES, "python", "2.7")
    with pytest.raises(UnknownLanguage, match="Python-"):  # exact, as Piston matches
        find_language(LANGUAGES, "Python", "*")
    assert find_language(LANGUAGES, "python", None).language.name == "python"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "language is required as a string"),
        (b"", "language is required as a string"),
        (b"[1]", "language is required as a string"),
        (b'{"language": 3}', "language is required as a string"),
        (b'{"language": "py", "version": 3, "files": []}', "version is required as a string"),
        (b'{"language": "py", "files": "x"}', "files is required as an array"),
        (b'{"language": "py", "files": [{"name": "a"}]}', "files[0].content is required as a string"),
        (b'{"language": "py", "files": [{"content": "", "name": 1}]}', "files[0].name must be a string"),
        (b'{"language": "py", "files": [], "run_timeout": "3"}', "If specified, run_timeout must be a number"),
        (b'{"language": "py", "files": [], "args": [1]}', "args must be an array of strings"),
        (b"not json", "the body is not valid JSON"),
        (b'{"language": "py", "files": [], "run_timeout": NaN}', "the body is not valid JSON"),
    ],
)  # fmt: skip
def test_bad_jobs_are_refused_with_pistons_messages(body: bytes, message: str) -> None:
    with pytest.raises(BadMessage) as refused:
        parse_job(body)
    assert refused.value.message == message


def _job(**fields: Any) -> Any:
    return parse_job(json.dumps({"language": "python", "files": [{"content": "x"}], **fields}))


def test_limits_map_onto_ours_and_minus_one_means_our_default() -> None:
    settings = Settings()
    job = _job(run_timeout=3000, run_memory_limit=100 * MIB + 1, compile_memory_limit=-1)
    assert run_limits(job, settings) == {"wall_ms": 3000, "memory_mb": 101}
    assert run_limits(_job(run_timeout=0, run_memory_limit=-1), settings) == {}
    assert run_limits(_job(run_timeout=5, run_memory_limit=1), settings) == {
        "wall_ms": 100,
        "memory_mb": 16,
    }  # raised to our floors


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("run_timeout", 600_001, LimitExceeded),
        ("compile_timeout", 30_001, LimitExceeded),
        ("run_memory_limit", 1024 * MIB + 1, LimitExceeded),
        ("run_cpu_time", 600_001, LimitExceeded),
        ("run_timeout", -1, BadMessage),
        ("run_memory_limit", -2, BadMessage),
    ],
)
def test_limits_above_our_maxima_are_refused(field: str, value: int, error: type[CeError]) -> None:
    with pytest.raises(error, match=field):
        run_limits(_job(**{field: value}), Settings())


def test_a_job_becomes_a_run_request_as_piston_runs_it() -> None:
    job = _job(
        files=[
            {"content": base64.b64encode(b"data").decode(), "encoding": "base64"},
            {"content": "print(input())"},
            {"content": "6869", "encoding": "hex", "name": "h.bin"},
        ],
        args=["1", "2", "3"],
        stdin="hi",
    )
    request = run_request(job, LANGUAGES.resolve("python"), Settings(), stdin=True)
    assert request.files is not None
    assert [f.name for f in request.files] == ["file1.py", "file0.py", "h.bin"]  # first utf8 runs
    assert request.files[2].data() == b"hi"
    assert request.stdin == "hi\n" and request.args == ["1", "2", "3"]
    assert run_request(job, LANGUAGES.resolve("python"), Settings(), stdin=False).stdin is None


def test_a_job_needs_one_utf8_file() -> None:
    job = _job(files=[{"content": "aGk=", "encoding": "base64"}])
    with pytest.raises(BadMessage, match="at least one utf8"):
        run_request(job, LANGUAGES.resolve("python"), Settings(), stdin=True)


@pytest.mark.parametrize(
    ("status", "code", "signal", "expected"),
    [
        (Status.EXITED, 0, None, (0, None, None)),
        (Status.EXITED, 3, None, (3, None, "RE")),
        (Status.EXITED, 130, "SIGINT", (None, "SIGINT", "SG")),
        (Status.TIMEOUT, None, None, (None, "SIGKILL", "TO")),
        (Status.OUTPUT_LIMIT, None, None, (None, "SIGKILL", "OL")),
        (Status.OOM, None, None, (None, "SIGKILL", "SG")),
        (Status.ERROR, None, None, (None, None, "XX")),
        (Status.COMPILE_ERROR, 1, None, (1, None, "RE")),
    ],
)
def test_each_status_has_pistons_code_signal_and_status(
    status: Status, code: int | None, signal: str | None, expected: tuple[Any, ...]
) -> None:
    end = stage_end(status, code, signal)
    assert (end.code, end.signal, end.status) == expected


def _response(**fields: Any) -> ExecuteResponse:
    base: dict[str, Any] = {
        "run_id": "r", "language": "c", "version": "12.2.0", "status": Status.EXITED,
        "exit_code": 0, "signal": None, "stdout": "out", "stderr": "err", "output": "outerr",
        "wall_ms": 5, "output_bytes": 6, "truncated": False,
    }  # fmt: skip
    return ExecuteResponse(**{**base, **fields})


def test_a_failed_compile_is_the_run_stage_too() -> None:
    c = find_language(LANGUAGES, "c", "*")
    compiled = CompileResult(status=Status.COMPILE_ERROR, exit_code=1, output="error: x")
    result = piston_result(
        _response(status=Status.COMPILE_ERROR, exit_code=1, stdout="", compile=compiled), c
    )
    assert result.compile is not None and result.run == result.compile
    assert (result.run.code, result.run.status, result.run.stderr) == (1, "RE", "error: x")
    assert result.language == "c"


def test_a_successful_compile_and_an_oom_run_are_told_apart() -> None:
    c = find_language(LANGUAGES, "c", "*")
    compiled = CompileResult(status=Status.EXITED, exit_code=0, output="")
    result = piston_result(
        _response(status=Status.OOM, exit_code=137, memory_peak_bytes=64 * MIB, compile=compiled), c
    )
    assert result.compile is not None and result.compile.code == 0
    assert (result.run.signal, result.run.ce_status, result.run.memory) == (
        "SIGKILL",
        Status.OOM,
        64 * MIB,
    )
    assert "compile" not in piston_result(_response(), c).to_data()


def test_the_app_mounts_the_surface_and_its_websockets_are_capped_as_websockets() -> None:
    app = create_app(Settings())  # no I/O until started
    routes = {
        (route.method, route.resource.canonical) for route in app.router.routes() if route.resource
    }
    for path in ("/runtimes", "/execute", "/connect"):
        assert any(p == f"/piston/api/v2{path}" for _, p in routes)
        assert any(p == f"/piston/api/v2{path}/" for _, p in routes)
    names = [resource.name for resource in app.router.resources() if resource.name]
    assert sorted(n for n in names if n.startswith(WEBSOCKET_ROUTE)) == [
        "websocket",
        "websocket-piston",
        "websocket-piston-slash",
    ]


def test_the_openapi_document_describes_the_surface() -> None:
    document = openapi_document()
    assert set(document["paths"]) == {
        "/piston",
        "/piston/api/v2/runtimes",
        "/piston/api/v2/execute",
    }
    assert {"PistonJob", "PistonResult", "PistonError"} <= set(document["components"]["schemas"])


class _RecordingSocket:
    """Stands in for the aiohttp socket: keeps what is sent."""

    closed = False

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_str(self, text: str) -> None:
        self.sent.append(json.loads(text))


async def test_the_socket_owner_speaks_pistons_messages_in_order() -> None:
    ws = _RecordingSocket()
    owner = PistonSocket(ws, find_language(LANGUAGES, "c", "*"))  # type: ignore[arg-type]
    limits = Settings().defaults.model_dump()
    await owner.send(Started(run_id="r", language="c", version="12.2.0", limits=limits))
    await owner.send(Stage(stage="compile"))
    await owner.send(Stage(stage="run"))
    euro = "€".encode()
    await owner.send_output(euro[:2], STDOUT)  # a character split between two chunks
    await owner.send_output(euro[2:] + b"\n", STDOUT)
    await owner.send_output(b"oops\n", STDERR)
    await owner.send(Queued(position=1))  # Piston has no word for it
    exit_message = Exit(
        run_id="r", stage="run", status=Status.OOM, exit_code=137, signal=None,
        wall_ms=5, output_bytes=9, truncated=False, message="the program reached its memory limit",
    )  # fmt: skip
    await owner.send(exit_message)
    assert ws.sent == [
        {"type": "runtime", "language": "c", "version": "12.2.0"},
        {"type": "stage", "stage": "compile"},
        {"type": "exit", "stage": "compile", "code": 0, "signal": None, "status": None, "ce_status": "exited"},
        {"type": "stage", "stage": "run"},
        {"type": "data", "stream": "stdout", "data": "€\n"},
        {"type": "data", "stream": "stderr", "data": "oops\n"},
        {"type": "exit", "stage": "run", "code": None, "signal": "SIGKILL", "status": "SG",
         "message": "the program reached its memory limit", "ce_status": "oom"},
    ]  # fmt: skip
    assert owner.exited.is_set()
