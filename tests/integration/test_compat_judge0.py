"""The Judge0 surface on the real engine, driven by the real SDK (`judge0` 0.0.8 from PyPI).

The SDK is synchronous: each call runs in a thread against the test
server's `/judge0`. Its default retry polls forever, so every client here
waits at most `SDK_WAIT_S`. The restart case and schemathesis use a
server process; every database lives under the test's `tmp_path`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import judge0
import pytest
import schemathesis
from aiohttp.test_utils import TestClient
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from ce_ws.logs import EVENTS_LOGGER
from tests.integration.conftest import MakeClient
from tests.integration.schema_checks import SCHEMA_SERVER_ENV, every_operation_conforms
from tests.integration.server_process import ServerProcess, server_process

T = TypeVar("T")
SDK_WAIT_S = 60.0
SEGFAULT = "import ctypes\nctypes.string_at(0)\n"


def _sdk(endpoint: str, **headers: str) -> judge0.Client:
    return judge0.Client(
        endpoint, headers=dict(headers), retry_strategy=judge0.MaxWaitTime(SDK_WAIT_S)
    )


def _endpoint(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("/judge0"))


async def _in_thread(client: TestClient[Any, Any], call: Callable[[judge0.Client], T]) -> T:
    endpoint = _endpoint(client)
    return await asyncio.to_thread(lambda: call(_sdk(endpoint)))


async def _run(client: TestClient[Any, Any], **submission: Any) -> judge0.Submission:
    """`judge0.run` as a user writes it: create, then poll until it has ended."""
    result: judge0.Submission = await _in_thread(
        client, lambda sdk: judge0.run(client=sdk, **submission)
    )
    return result


@pytest.fixture
async def j0(make_client: MakeClient, tmp_path: Path) -> TestClient[Any, Any]:
    """A test server whose Judge0 database is the test's own."""
    return await make_client(judge0={"database": str(tmp_path / "judge0.sqlite3")})


async def test_run_with_stdin_is_accepted_and_logged_as_judge0(
    j0: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    result = await _run(j0, source_code="print(input()[::-1])", language=71, stdin="abc")
    assert result.status == judge0.Status.ACCEPTED
    assert result.stdout == "cba\n"
    assert result.stderr is None and result.compile_output is None
    assert result.wall_time is not None and result.wall_time < 10
    assert result.exit_code == 0
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]
    assert [e["via"] for e in events if e["event"] == "run_end"] == ["judge0"]


async def test_a_language_alias_resolves_through_about(j0: TestClient[Any, Any]) -> None:
    result = await _run(j0, source_code="print('hi')", language=judge0.PYTHON)
    assert (result.status, result.stdout) == (judge0.Status.ACCEPTED, "hi\n")


async def test_a_c_compile_error_is_status_6_with_the_compiler_output(
    j0: TestClient[Any, Any],
) -> None:
    result = await _run(j0, source_code="int main(void) { return x; }", language=judge0.C)
    assert result.status == judge0.Status.COMPILATION_ERROR
    assert result.compile_output is not None and "error" in result.compile_output
    assert result.stdout is None and result.time is None


async def test_a_non_zero_exit_is_nzec_with_its_exit_code(j0: TestClient[Any, Any]) -> None:
    result = await _run(j0, source_code="import sys\nsys.exit(3)", language=71)
    assert result.status == judge0.Status.RUNTIME_ERROR_NZEC
    assert result.exit_code == 3


async def test_a_different_answer_is_wrong_answer(j0: TestClient[Any, Any]) -> None:
    result = await _run(j0, source_code="print(41)", language=71, expected_output="42")
    assert result.status == judge0.Status.WRONG_ANSWER
    assert result.stdout == "41\n"


async def test_a_busy_loop_hits_the_time_limit(j0: TestClient[Any, Any]) -> None:
    result = await _run(
        j0, source_code="while True:\n    pass", language=71, cpu_time_limit=1, cpu_extra_time=0
    )
    assert result.status == judge0.Status.TIME_LIMIT_EXCEEDED
    assert result.wall_time is not None and 1.0 <= result.wall_time < 5


async def test_a_segfault_is_status_7(j0: TestClient[Any, Any]) -> None:
    result = await _run(j0, source_code=SEGFAULT, language=71)
    assert result.status == judge0.Status.RUNTIME_ERROR_SIGSEGV
    assert (result.exit_signal, result.exit_code) == (11, 0)


async def test_memory_over_the_limit_says_it_was_the_memory_limit(
    j0: TestClient[Any, Any],
) -> None:
    code = "blocks = []\nwhile True:\n    blocks.append(b'x' * (8 << 20))  # touched, not lazily mapped"
    result = await _run(j0, source_code=code, language=71, memory_limit=32 * 1024)
    assert result.status == judge0.Status.RUNTIME_ERROR_OTHER
    assert result.message is not None  # base64, as Judge0 sends it with base64_encoded=true
    assert "memory limit" in base64.b64decode(result.message).decode().lower()


async def test_a_batch_of_several_comes_back_in_order(j0: TestClient[Any, Any]) -> None:
    submissions = [
        judge0.Submission(source_code="print(1)", language=71, expected_output="1"),
        judge0.Submission(source_code="echo two", language=judge0.BASH),
        judge0.Submission(source_code="print(3)", language=71, expected_output="4"),
        judge0.Submission(source_code="puts 4", language=judge0.RUBY),
    ]
    results = await _in_thread(j0, lambda sdk: judge0.run(client=sdk, submissions=submissions))
    assert [r.status for r in results] == [
        judge0.Status.ACCEPTED,
        judge0.Status.ACCEPTED,
        judge0.Status.WRONG_ANSWER,
        judge0.Status.ACCEPTED,
    ]
    assert [r.stdout for r in results] == ["1\n", "two\n", "3\n", "4\n"]
    assert len({r.token for r in results}) == 4


async def test_wait_true_answers_with_the_ended_submission(j0: TestClient[Any, Any]) -> None:
    body = {"source_code": "print('now')", "language_id": 71}
    async with j0.post("/judge0/submissions?wait=true&fields=stdout,status", json=body) as reply:
        assert reply.status == 201
        assert await reply.json() == {
            "stdout": "now\n",
            "status": {"id": 3, "description": "Accepted"},
        }


async def test_the_catalogue_answers_the_sdk(j0: TestClient[Any, Any]) -> None:
    sdk = await asyncio.to_thread(_sdk, _endpoint(j0))
    assert {language.id for language in sdk.languages} == {46, 50, 52, 63, 71, 72}
    assert sdk.config.max_submission_batch_size == 20
    statuses = await asyncio.to_thread(sdk.get_statuses)
    assert statuses[6] == {"id": 7, "description": "Runtime Error (SIGSEGV)"}
    c = await asyncio.to_thread(sdk.get_language, 50)
    assert c.source_file == "main.c" and c.compile_cmd and c.compile_cmd.startswith("gcc")
    assert (await asyncio.to_thread(sdk.get_about))["version"] == "1.13.1"


async def test_bad_input_gets_judge0s_error_shapes(j0: TestClient[Any, Any]) -> None:
    async def post(path: str, body: object) -> tuple[int, Any]:
        async with j0.post(f"/judge0{path}", json=body) as reply:
            return reply.status, await reply.json()

    assert await post("/submissions", {"source_code": "x"}) == (
        422,
        {"language_id": ["can't be blank"]},
    )
    assert await post("/submissions", {"source_code": "x", "language_id": 9}) == (
        422,
        {"language_id": ["language with id 9 doesn't exist"]},
    )
    too_many = {"submissions": [{"source_code": "x", "language_id": 71}] * 21}
    assert await post("/submissions/batch", too_many) == (
        400,
        {"error": "number of submissions in a batch should be less than or equal to 20"},
    )
    async with j0.get("/judge0/submissions/no-such-token") as reply:
        assert (reply.status, await reply.json()) == (404, {"status": 404, "error": "Not Found"})
    async with j0.get("/judge0/submissions/x?fields=queued_at") as reply:
        assert (reply.status, await reply.json()) == (400, {"error": "invalid fields: [queued_at]"})


async def test_a_body_that_is_not_json_is_a_400_and_not_sent_as_json_a_415(
    j0: TestClient[Any, Any],
) -> None:
    headers = {"Content-Type": "application/json"}
    async with j0.post("/judge0/submissions", data=b"{nope", headers=headers) as reply:
        assert (reply.status, await reply.json()) == (
            400,
            {"error": "the request body is not valid JSON"},
        )
    headers = {"Content-Type": "text/plain"}
    async with j0.post("/judge0/submissions", data=b"{}", headers=headers) as reply:
        assert reply.status == 415 and "error" in await reply.json()


async def test_a_page_of_another_origin_runs_nothing(j0: TestClient[Any, Any]) -> None:
    body = {"source_code": "print(1)", "language_id": 71}
    headers = {"Origin": "http://evil.example"}
    async with j0.post("/judge0/submissions", json=body, headers=headers) as reply:
        assert reply.status == 403
        assert "another origin" in (await reply.json())["error"]


async def test_tokens_are_checked_from_x_auth_token(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(
        tokens=["s3cret"], judge0={"database": str(tmp_path / "judge0.sqlite3")}
    )
    endpoint = _endpoint(client)
    with pytest.raises(RuntimeError, match="Authentication failed"):
        await asyncio.to_thread(_sdk, endpoint)
    sdk = await asyncio.to_thread(_sdk, endpoint, **{"X-Auth-Token": "s3cret"})
    assert sdk.config.max_queue_size == 100
    async with client.get("/judge0/statuses") as reply:
        assert (reply.status, await reply.read()) == (401, b"")


def test_a_token_still_answers_after_a_restart(tmp_path: Path) -> None:
    env = {
        "CE_JUDGE0__DATABASE": str(tmp_path / "judge0.sqlite3"),
        "CE_POOL__ENABLED": "false",
    }
    with server_process(**env) as server:
        sdk = _sdk(f"{server.url}/judge0")
        ran = judge0.run(client=sdk, source_code="print('kept')", language=71)
        assert ran.status == judge0.Status.ACCEPTED
    with server_process(**env) as server:
        asked = judge0.Submission(source_code="", language=71)
        asked.token = ran.token
        found = _sdk(f"{server.url}/judge0").get_submission(asked)
    assert (found.status, found.stdout, found.token) == (
        judge0.Status.ACCEPTED,
        "kept\n",
        ran.token,
    )


# -- schemathesis: every answer documented, none a 5xx ----------------------

_SCHEMA_SERVER_ENV = {
    **SCHEMA_SERVER_ENV,
    # Generated batches stay small. The queue is never full (Judge0's 503 is a 5xx,
    # which the check refuses): what waits is soon refused by the rate limit.
    "CE_JUDGE0__MAX_BATCH": "3",
    "CE_JUDGE0__MAX_QUEUE": "10000",
}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    database = tmp_path_factory.mktemp("judge0") / "judge0.sqlite3"
    with server_process(**_SCHEMA_SERVER_ENV, CE_JUDGE0__DATABASE=str(database)) as server:
        yield server


@pytest.fixture(scope="module")
def judge0_schema(live_server: ServerProcess) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/judge0/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_judge0_answer_is_documented_and_none_is_a_server_error(
    judge0_schema: BaseSchema, live_server: ServerProcess, mode: GenerationMode
) -> None:
    every_operation_conforms(judge0_schema, live_server.url, mode)
