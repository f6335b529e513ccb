"""Codapi under `/codapi` on the real engine: exec, health, CORS, and every refusal's shape."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ce_ws.logs import EVENTS_LOGGER
from tests.integration.conftest import MakeClient
from tests.integration.rest import EXECUTE, metric, metrics, named

EXEC = "/codapi/v1/exec"
HEALTH = "/codapi/v1/health"
#: The page of the widget, on another origin than the server's.
PAGE = "http://127.0.0.2:8000"
ELSEWHERE = "http://127.0.0.3:8000"
CODAPI_FIELDS = {"id", "ok", "duration", "stdout", "stderr"}
HELLO = {
    "python": "print('hello')",
    "node": "console.log('hello')",
    "gcc": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }',
    "cpp": '#include <iostream>\nint main() { std::cout << "hello" << std::endl; }',
    "ruby": "puts 'hello'",
    "shell": "echo hello",
}


async def post(
    client: TestClient[Any, Any],
    body: Any,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """POST the widget's request as the widget sends it; return Codapi's answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"accept": "application/json", "content-type": "application/json", **(headers or {})}
    response = await client.post(EXEC, data=data, headers=sent)
    answer: dict[str, Any] = await response.json()
    assert response.status == status, answer
    assert set(answer) == CODAPI_FIELDS, answer
    return answer


def snippet(code: str, sandbox: str = "python", **fields: Any) -> dict[str, Any]:
    return {"sandbox": sandbox, "command": "run", "files": {"": code}, **fields}


def refused(answer: dict[str, Any], *words: str) -> None:
    assert (answer["id"], answer["ok"], answer["duration"], answer["stdout"]) == ("-", False, 0, "")
    for word in words:
        assert word in answer["stderr"], answer


@pytest.mark.parametrize("sandbox", sorted(HELLO))
async def test_each_sandbox_runs_the_snippet_and_answers_in_codapis_shape(
    client: TestClient[Any, Any], sandbox: str
) -> None:
    answer = await post(client, snippet(HELLO[sandbox], sandbox))
    assert (answer["ok"], answer["stdout"], answer["stderr"]) == (True, "hello\n", "")
    assert answer["id"].startswith(f"{sandbox}_run_") and answer["duration"] > 0


async def test_extra_files_and_a_version_prefix_are_honoured(client: TestClient[Any, Any]) -> None:
    body = snippet("import helper\nprint(helper.WORD)", version="3.11")
    body["files"]["helper.py"] = "WORD = 'from a second file'"
    answer = await post(client, body)
    assert (answer["ok"], answer["stdout"]) == (True, "from a second file\n")
    assert answer["id"].startswith("python.3.11_run_")


async def test_a_c_compile_error_is_not_ok_with_the_compiler_output_in_stderr(
    client: TestClient[Any, Any],
) -> None:
    answer = await post(client, snippet("int main(void) { return undefined_name; }", "c"))
    assert (answer["ok"], answer["stdout"]) == (False, "")
    assert "undefined_name" in answer["stderr"] and answer["stderr"].endswith("(exit status 1)")


async def test_a_failing_program_shows_its_output_and_traceback_in_stderr(
    client: TestClient[Any, Any],
) -> None:
    answer = await post(client, snippet("print('before')\nraise SystemExit('boom')"))
    assert (answer["ok"], answer["stdout"]) == (False, "")
    assert answer["stderr"] == "before\nboom (exit status 1)"


async def test_a_codapi_run_ends_at_its_own_wall_limit(make_client: MakeClient) -> None:
    client = await make_client(codapi={"wall_ms": 1000})
    answer = await post(client, snippet("import time\nprint('start', flush=True)\ntime.sleep(60)"))
    assert (answer["ok"], answer["stderr"]) == (False, "start (code execution timeout)")
    assert 1000 <= answer["duration"] < 5000


async def test_health_answers_get_and_head(client: TestClient[Any, Any]) -> None:
    response = await client.get(HEALTH)
    assert (response.status, await response.json()) == (200, {"status": "ok"})
    response = await client.head(HEALTH)
    assert (response.status, await response.read()) == (200, b"")


@pytest.mark.parametrize("path", [EXEC, HEALTH])
async def test_preflight_from_an_allowed_origin_gets_the_cors_answers(
    make_client: MakeClient, path: str
) -> None:
    client = await make_client(allowed_origins=[PAGE])
    response = await client.options(
        path,
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"]
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers.getall("Vary")


async def test_an_allowed_page_runs_and_reads_the_answer(make_client: MakeClient) -> None:
    client = await make_client(allowed_origins=[PAGE])
    response = await client.post(
        EXEC, json=snippet("print(6 * 7)"), headers={"Origin": PAGE, "Accept": "application/json"}
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert (await response.json())["stdout"] == "42\n"
    health = await client.head(HEALTH, headers={"Origin": PAGE})
    assert health.headers["Access-Control-Allow-Origin"] == PAGE


async def test_a_page_elsewhere_gets_no_cors_headers_and_nothing_runs(
    make_client: MakeClient,
) -> None:
    client = await make_client(allowed_origins=[PAGE])
    response = await client.options(
        EXEC, headers={"Origin": ELSEWHERE, "Access-Control-Request-Method": "POST"}
    )
    assert response.status == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    refused(await response.json(), "CE_ALLOWED_ORIGINS")
    # A request the browser sends without asking first is refused before its body.
    answer = await post(client, snippet("print(1)"), status=403, headers={"Origin": ELSEWHERE})
    refused(answer)
    samples = await metrics(client)
    assert named(samples, "ce_runs_total") == []  # not one run, of any kind
    assert metric(samples, "ce_runs_rejected_total", reason="origin_not_allowed") == 1


async def test_any_origin_when_the_operator_allows_it_but_not_on_the_native_api(
    make_client: MakeClient,
) -> None:
    client = await make_client(codapi={"allow_any_origin": True})
    response = await client.post(EXEC, json=snippet("print('any')"), headers={"Origin": ELSEWHERE})
    assert response.status == 200 and (await response.json())["stdout"] == "any\n"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    native = await client.post(
        EXECUTE, json={"language": "python", "code": "1"}, headers={"Origin": ELSEWHERE}
    )
    assert native.status == 403


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, ["invalid request"]),
        (b"[]", 400, []),
        ({"sandbox": "python", "command": "run"}, 400, ["files"]),
        ({"sandbox": "python", "command": "run", "files": {"": 7}}, 400, ["files"]),
        (snippet("   "), 400, ["empty request"]),
        (snippet("x", "cobol"), 404, ["unknown sandbox"]),
        (snippet("x", version="2.7"), 404, ["unknown version"]),
        ({**snippet("x"), "command": "test"}, 404, ["unknown command"]),
        ({**snippet("x"), "files": {"": "x", "../up.py": ""}}, 400, ["invalid file name"]),
        (snippet("#" * (65 * 1024)), 400, ["limit is"]),
    ],
)
async def test_bad_input_gets_codapis_error_shape_and_status(
    client: TestClient[Any, Any], body: Any, status: int, words: list[str]
) -> None:
    refused(await post(client, body, status=status), *words)


async def test_a_body_not_sent_as_json_is_codapis_400_not_a_415(
    client: TestClient[Any, Any],
) -> None:
    response = await client.post(EXEC, data=json.dumps(snippet("print(1)")))  # text/plain
    assert response.status == 400
    refused(await response.json(), "application/json")


async def test_a_body_over_the_cap_is_a_413(make_client: MakeClient) -> None:
    client = await make_client(max_message_bytes=4096)
    refused(await post(client, snippet("#" * 5000), status=413))


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", EXEC, 405), ("PUT", HEALTH, 405), ("POST", "/codapi/v2/exec", 404)],
)
async def test_wrong_method_or_path_under_codapi_is_in_codapis_shape(
    client: TestClient[Any, Any], method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status == status
    if status == 405:
        assert "Allow" in response.headers
    refused(await response.json())


async def test_a_host_not_allowed_is_refused_in_codapis_shape(
    client: TestClient[Any, Any],
) -> None:
    refused(await post(client, snippet("print(1)"), status=403, headers={"Host": "evil.example"}))


async def test_tokens_configured_require_a_bearer_header(make_client: MakeClient) -> None:
    client = await make_client(tokens=["s3cret"])
    response = await client.post(EXEC, json=snippet("print(1)"))
    assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    refused(await response.json(), "token")
    answer = await post(client, snippet("print(1)"), headers={"Authorization": "Bearer s3cret"})
    assert answer["stdout"] == "1\n"


async def test_busy_is_codapis_429_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(
        capacity={"max_runs": 1, "max_queue": 0, "max_queue_per_client": 0},
        pool={"enabled": False},
        codapi={"wall_ms": 3000},
    )
    long_run = asyncio.create_task(post(client, snippet("import time; time.sleep(60)")))
    for _ in range(200):  # until the long run holds the one slot
        if (await (await client.get("/readyz")).json())["active_runs"] == 1:
            break
        await asyncio.sleep(0.05)
    response = await client.post(EXEC, json=snippet("print(1)"))
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    refused(await response.json())
    assert (await long_run)["stderr"] == "code execution timeout"


async def test_an_engine_failure_is_codapis_500(make_client: MakeClient) -> None:
    client = await make_client(sandbox={"image": "code-executor-no-such-image"})
    answer = await post(client, snippet("print(1)"), status=500)
    assert answer["ok"] is False and "no-such-image" in answer["stderr"]


async def test_runs_and_refusals_are_counted_and_logged_as_codapi(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = await post(client, snippet("print('counted')"))
    await post(client, snippet("x", "cobol"), status=404)
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]
    run_end, refusal = events
    assert answer["id"].endswith(run_end["run_id"])
    assert (run_end["event"], run_end["via"], run_end["status"]) == ("run_end", "codapi", "exited")
    assert (refusal["event"], refusal["via"], refusal["code"]) == (
        "refused",
        "codapi",
        "unknown_language",
    )
    samples = await metrics(client)
    assert metric(samples, "ce_runs_total", language="python", status="exited") == 1
    assert metric(samples, "ce_runs_rejected_total", reason="unknown_language") == 1
