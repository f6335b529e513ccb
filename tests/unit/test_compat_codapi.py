"""The Codapi surface's mapping: sandboxes, files, results and refusals (no engine)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import pytest
from aiohttp import web

from ce_ws.api.compat.codapi import (
    EXEC_PATH,
    HEALTH_PATH,
    NO_ID,
    CodapiRequest,
    codapi_status,
    execution,
    openapi_document,
    parse_request,
    refusal,
    resolve_sandbox,
    source_files,
    to_run_request,
)
from ce_ws.config import Settings
from ce_ws.errors import (
    BadMessage,
    BodyTimeout,
    BodyTooLarge,
    Busy,
    CeError,
    OriginNotAllowed,
    RateLimited,
    Unauthorized,
    UnknownLanguage,
    UnsupportedMediaType,
)
from ce_ws.languages import load_languages
from ce_ws.protocol import CompileResult, ExecuteResponse, Status

LANGUAGES = load_languages()
PYTHON = LANGUAGES.resolve("python")


def codapi(**fields: Any) -> CodapiRequest:
    body = {"sandbox": "python", "command": "run", "files": {"": "print(1)"}, **fields}
    return CodapiRequest.model_validate(body)


def result(**fields: Any) -> ExecuteResponse:
    values: dict[str, Any] = {
        "run_id": "0123abcd",
        "language": "python",
        "version": "3.11.2",
        "status": Status.EXITED,
        "exit_code": 0,
        "signal": None,
        "stdout": "",
        "stderr": "",
        "output": "",
        "wall_ms": 40,
        "output_bytes": 0,
        "truncated": False,
        **fields,
    }
    return ExecuteResponse(**values)


@pytest.mark.parametrize(
    ("sandbox", "language"),
    [
        ("python", "python"),
        ("javascript", "javascript"),
        ("node", "javascript"),
        ("c", "c"),
        ("gcc", "c"),
        ("cpp", "cpp"),
        ("ruby", "ruby"),
        ("shell", "bash"),
        ("bash", "bash"),
        ("sh", "bash"),
        ("ash", "bash"),
    ],
)
def test_codapi_sandbox_names_map_to_our_languages(sandbox: str, language: str) -> None:
    assert resolve_sandbox(codapi(sandbox=sandbox), LANGUAGES).name == language


@pytest.mark.parametrize("version", [None, "", "3", "3.11", "3.11.2"])
def test_a_version_naming_ours_or_a_prefix_of_it_is_accepted(version: str | None) -> None:
    assert resolve_sandbox(codapi(version=version), LANGUAGES) is PYTHON


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"sandbox": "cobol"}, "sandbox"),
        ({"sandbox": "py"}, "sandbox"),  # our alias, not a Codapi name
        ({"version": "3.1"}, "version"),  # not a prefix of 3.11.2 by components
        ({"version": "3.12"}, "version"),
        ({"command": "test"}, "command"),
    ],
)
def test_unknown_sandbox_version_or_command_is_codapis_404(
    fields: dict[str, str], field: str
) -> None:
    with pytest.raises(UnknownLanguage) as refused:
        resolve_sandbox(codapi(**fields), LANGUAGES)
    assert refused.value.field == field
    assert codapi_status(refused.value) is HTTPStatus.NOT_FOUND


def test_the_nameless_file_is_the_entry_and_comes_first() -> None:
    files = source_files({"helper.py": "X = 1", "": "import helper"}, PYTHON)
    assert [(f.name, f.content) for f in files] == [
        ("main.py", "import helper"),
        ("helper.py", "X = 1"),
    ]


def test_a_file_named_as_the_entry_is_the_entry() -> None:
    files = source_files({"util.py": "", "main.py": "print(2)"}, PYTHON)
    assert [f.name for f in files] == ["main.py", "util.py"]


def test_data_urls_are_decoded_as_codapis_server_does() -> None:
    files = source_files(
        {"": "x", "a.bin": "data:application/octet-stream;base64,AAEC", "b.txt": "data:,plain"},
        PYTHON,
    )
    assert [f.data() for f in files[1:]] == [b"\x00\x01\x02", b"plain"]


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"": "   \n"},
        {"": "x", "main.py": "y"},  # the same file twice
        {"helper.py": "X = 1", "other.py": ""},  # no entry
        {"": "x", "a.bin": "data:no-comma"},
    ],
)
def test_files_without_a_single_entry_or_with_a_bad_data_url_are_refused(
    files: dict[str, str],
) -> None:
    with pytest.raises(BadMessage) as refused:
        source_files(files, PYTHON)
    assert refused.value.field == "files"


def test_a_codapi_run_gets_the_lower_of_its_wall_limit_and_the_default() -> None:
    request = codapi(files={"": "print(1)", "more.py": "Y = 2"})
    run = to_run_request(request, LANGUAGES, Settings(codapi={"wall_ms": 4000}))
    assert run.language == "python" and run.limits is not None
    assert run.limits.wall_ms == 4000
    assert [f.name for f in run.files or []] == ["main.py", "more.py"]
    lower_default = Settings(codapi={"wall_ms": 4000}, defaults={"wall_ms": 2000})
    assert to_run_request(request, LANGUAGES, lower_default).limits == run.limits.model_copy(
        update={"wall_ms": 2000}
    )


def test_a_file_name_the_models_refuse_is_a_bad_message_not_a_crash() -> None:
    with pytest.raises(BadMessage):
        to_run_request(codapi(files={"": "x", "n" * 300: ""}), LANGUAGES, Settings())


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"sandbox": "python", "command": "run"}',  # no files
        b'{"sandbox": 1, "command": "run", "files": {}}',
        b'{"sandbox": "python", "command": "run", "files": {"": 3}}',
        b'{"sandbox": "python", "command": "run", "files": {"": "a", "": "b"}}',
    ],
)
def test_a_body_that_is_not_a_codapi_request_is_a_bad_message(body: bytes) -> None:
    with pytest.raises(BadMessage):
        parse_request(body)


def test_parse_ignores_unknown_fields_like_codapis_server() -> None:
    body = b'{"sandbox":"python","command":"run","files":{"":"x"},"id":"mine","extra":1}'
    assert parse_request(body) == codapi(files={"": "x"})


def test_a_program_that_exits_0_is_ok_with_its_streams_apart() -> None:
    done = result(stdout="hi\n", stderr="warn\n", output="hi\nwarn\n")
    answer = execution(done, codapi(), duration_ms=321)
    assert answer.to_data() == {
        "id": "python_run_0123abcd",
        "ok": True,
        "duration": 321,
        "stdout": "hi\n",
        "stderr": "warn\n",
    }


def test_a_failed_run_puts_stdout_then_stderr_and_the_reason_in_stderr() -> None:
    # Not in arrival order: two pipes read apart can cut a line in two.
    failed = result(exit_code=1, stdout="out\n", stderr="Traceback\n", output="ouTraceback\nt\n")
    answer = execution(failed, codapi(version="3.11"), duration_ms=5)
    assert (answer.id, answer.ok, answer.stdout) == ("python.3.11_run_0123abcd", False, "")
    assert answer.stderr == "out\nTraceback (exit status 1)"


def test_a_compile_error_is_not_ok_with_the_compiler_output_in_stderr() -> None:
    compile_stage = CompileResult(
        status=Status.COMPILE_ERROR, exit_code=1, output="main.c: error\n"
    )
    failed = result(status=Status.COMPILE_ERROR, exit_code=1, compile=compile_stage)
    answer = execution(failed, codapi(sandbox="c"), duration_ms=5)
    assert (answer.ok, answer.stdout, answer.stderr) == (False, "", "main.c: error (exit status 1)")


def test_compiler_warnings_of_a_program_that_ran_go_to_stderr() -> None:
    compile_stage = CompileResult(status=Status.EXITED, exit_code=0, output="warning: x\n")
    done = result(stdout="ok\n", output="ok\n", compile=compile_stage)
    answer = execution(done, codapi(sandbox="cpp"), duration_ms=5)
    assert (answer.ok, answer.stdout, answer.stderr) == (True, "ok\n", "warning: x\n")


@pytest.mark.parametrize(
    ("fields", "stderr"),
    [
        ({"status": Status.TIMEOUT, "exit_code": None}, "code execution timeout"),
        ({"exit_code": 139, "signal": "SIGSEGV"}, "signal: SIGSEGV"),
        ({"status": Status.OOM, "exit_code": 137, "message": "out of memory"}, "out of memory"),
        ({"status": Status.OUTPUT_LIMIT, "exit_code": None}, "output_limit"),
        ({"exit_code": 3, "stdout": "  \n"}, "exit status 3"),
    ],
)
def test_the_reason_of_a_failure_ends_stderr(fields: dict[str, Any], stderr: str) -> None:
    answer = execution(result(**fields), codapi(), duration_ms=5)
    assert (answer.ok, answer.stdout, answer.stderr) == (False, "", stderr)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadMessage("x"), HTTPStatus.BAD_REQUEST),
        (UnsupportedMediaType("x"), HTTPStatus.BAD_REQUEST),
        (BodyTimeout("x"), HTTPStatus.REQUEST_TIMEOUT),
        (BodyTooLarge("x"), HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
        (Unauthorized("x"), HTTPStatus.UNAUTHORIZED),
        (OriginNotAllowed("x"), HTTPStatus.FORBIDDEN),
        (UnknownLanguage("x"), HTTPStatus.NOT_FOUND),
        (RateLimited("x"), HTTPStatus.TOO_MANY_REQUESTS),
        (Busy("x"), HTTPStatus.TOO_MANY_REQUESTS),
        (CeError("x"), HTTPStatus.INTERNAL_SERVER_ERROR),
    ],
)
def test_refusals_get_codapis_statuses(error: CeError, status: HTTPStatus) -> None:
    assert codapi_status(error) is status


def test_a_refusal_is_codapis_failed_execution() -> None:
    response = refusal(Busy("every run slot is taken"))
    assert response.status == 429 and response.headers["Retry-After"]
    assert response.text is not None
    assert json.loads(response.text) == {
        "id": NO_ID,
        "ok": False,
        "duration": 0,
        "stdout": "",
        "stderr": "every run slot is taken",
    }


def test_a_refusal_naming_a_field_says_it_first() -> None:
    response = refusal(BadMessage("invalid request: Field required", field="files"))
    assert response.status == 400 and response.text is not None
    assert json.loads(response.text)["stderr"] == "files: invalid request: Field required"


def test_aiohttps_own_refusals_keep_their_status_and_headers() -> None:
    response = refusal(web.HTTPMethodNotAllowed("PUT", ["POST", "OPTIONS"]))
    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {"POST", "OPTIONS"}
    assert response.text is not None
    assert json.loads(response.text)["stderr"] == "Method Not Allowed"


def test_the_openapi_document_describes_exec_and_health_with_codapis_shapes() -> None:
    document = openapi_document()
    exec_responses = document["paths"][EXEC_PATH]["post"]["responses"]
    refs = {r["content"]["application/json"]["schema"]["$ref"] for r in exec_responses.values()}
    assert refs == {"#/components/schemas/Execution"}
    assert "get" in document["paths"][HEALTH_PATH]
    assert {"CodapiRequest", "Execution", "Health"} <= set(document["components"]["schemas"])
