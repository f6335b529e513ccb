"""Refused `execute` requests: 400, 401, 413, 429 and 503, with the WebSocket's error codes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.rest import EXECUTE, execute, refusal


async def test_unknown_language_is_a_400_naming_the_field(client: TestClient[Any, Any]) -> None:
    error = await refusal(client, 400, language="cobol", code="x")
    assert error["code"] == "unknown_language" and error["field"] == "language"


async def test_limit_above_the_maximum_is_refused(client: TestClient[Any, Any]) -> None:
    error = await refusal(client, 400, language="bash", code="true", limits={"wall_ms": 10**9})
    assert error["code"] == "limit_exceeded" and error["field"] == "limits.wall_ms"


@pytest.mark.parametrize(
    "limits",
    [
        {"memory_mb": 8},
        {"pids": 1},
        {"wall_ms": 5},
        {"idle_ms": 0},
        {"cpus": 0.01},
        {"output_bytes": 0},
    ],
)
async def test_limit_below_its_floor_is_bad_message_and_the_server_carries_on(
    client: TestClient[Any, Any], limits: dict[str, float]
) -> None:
    error = await refusal(client, 400, language="bash", code="true", limits=limits)
    [name] = limits
    assert error["code"] == "bad_message" and error["field"] == f"limits.{name}"
    assert (await execute(client, language="bash", code="echo ok"))["stdout"] == "ok\n"


async def test_wrong_field_type_is_bad_message_naming_the_field(
    client: TestClient[Any, Any],
) -> None:
    error = await refusal(client, 400, language="bash", code="true", args="not a list")
    assert error["code"] == "bad_message" and error["field"] == "args"


async def test_code_and_files_together_are_refused(client: TestClient[Any, Any]) -> None:
    files = [{"name": "main.sh", "content": "true"}]
    error = await refusal(client, 400, language="bash", code="true", files=files)
    assert error["code"] == "bad_message"


async def test_body_that_is_not_json_is_bad_message(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        EXECUTE, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "bad_message" and "field" not in error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"language": "python", "language": "bash", "code": "echo ran"}', "language"),
        (
            b'{"language": "bash", "files": [{"name": "main.sh", "content": "echo ran",'
            b' "content": "true"}]}',
            "files.0.content",
        ),
    ],
)
async def test_duplicate_keys_are_a_400_bad_message(
    client: TestClient[Any, Any], body: bytes, field: str
) -> None:
    """A proxy and the server must not read one body two ways: refused, not last-wins."""
    response = await client.post(EXECUTE, data=body, headers={"Content-Type": "application/json"})
    result = await response.json()
    assert response.status == 400, result
    assert (result["error"]["code"], result["error"].get("field")) == ("bad_message", field)
    assert (await execute(client, language="bash", code="echo ok"))["stdout"] == "ok\n"


async def test_code_over_its_cap_is_a_400(client: TestClient[Any, Any]) -> None:
    error = await refusal(client, 400, language="bash", code="#" * (65 * 1024))
    assert error["code"] == "code_too_large" and error["field"] == "code"


async def test_body_over_the_cap_is_a_413(make_client: MakeClient) -> None:
    client = await make_client(max_message_bytes=4096)
    error = await refusal(client, 413, language="bash", code="#" * 5000)
    assert error["code"] == "code_too_large"


async def test_tokens_configured_require_a_bearer_header_or_token_field(
    make_client: MakeClient,
) -> None:
    client = await make_client(tokens=["s3cret"])
    response = await client.post(EXECUTE, json={"language": "bash", "code": "true"})
    assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert (await response.json())["error"]["code"] == "unauthorized"
    wrong = {"Authorization": "Bearer nope"}
    await refusal(client, 401, headers=wrong, language="bash", code="true")
    # An unauthorized client learns nothing about its body.
    await refusal(client, 401, language="cobol")
    header = {"Authorization": "Bearer s3cret"}
    response = await client.post(EXECUTE, json={"language": "bash", "code": "true"}, headers=header)
    assert response.status == 200
    result = await execute(client, language="bash", code="echo ok", token="s3cret")
    assert result["stdout"] == "ok\n"


async def test_too_many_runs_a_minute_is_a_429_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(capacity={"runs_per_minute": 1})
    await execute(client, language="bash", code="true")
    response = await client.post(EXECUTE, json={"language": "bash", "code": "true"})
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    assert (await response.json())["error"]["code"] == "rate_limited"


async def _wait_for(client: TestClient[Any, Any], **expected: int) -> dict[str, Any]:
    """Poll /readyz until its counters match."""
    for _ in range(100):
        body: dict[str, Any] = await (await client.get("/readyz")).json()
        if all(body[name] == value for name, value in expected.items()):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"readyz never showed {expected}: {body}")


async def test_full_server_answers_503_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(
        capacity={"max_runs": 1, "max_queue": 1, "rest_queue_wait_s": 1.5}, pool={"enabled": False}
    )
    long_run = asyncio.create_task(
        execute(client, language="bash", code="sleep 100", limits={"wall_ms": 4000})
    )
    readiness = await _wait_for(client, active_runs=1)
    assert readiness["ready"] is False and "slot" in readiness["reason"]
    # The line has room: this one waits its bounded time, then gives up.
    waiting = asyncio.create_task(client.post(EXECUTE, json={"language": "bash", "code": "true"}))
    await _wait_for(client, queued_runs=1)
    # The line is full: refused at once.
    response = await client.post(EXECUTE, json={"language": "bash", "code": "true"})
    assert response.status == 503 and int(response.headers["Retry-After"]) > 0
    assert (await response.json())["error"]["code"] == "busy"
    response = await waiting
    assert response.status == 503 and "Retry-After" in response.headers
    error = (await response.json())["error"]
    assert error["code"] == "busy" and "1.5 s" in error["message"]
    assert (await long_run)["status"] == "timeout"
