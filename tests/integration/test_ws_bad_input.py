"""Bad input gets a precise error (or close code) and the server keeps serving."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from ce_ws.runs import runner
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import run_remains


async def error_for(term: TermClient, raw: str) -> dict[str, Any]:
    await term.ws.send_str(raw)
    return await term.next_message("error", timeout=5)


async def assert_still_serves(client: TestClient[Any, Any]) -> None:
    async with TermClient.connect(client) as term:
        exit_message = await term.run_to_exit("python", "print('still here')")
        assert exit_message["exit_code"] == 0 and b"still here" in term.output


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("{not json", None),
        ("[1, 2, 3]", None),
        ('{"type": "teleport"}', None),
        ('{"no_type": 1}', None),
        ('{"type": "run", "language": 7, "code": "x"}', "language"),
        ('{"type": "run", "language": "python", "code": "x", "args": "not-a-list"}', "args"),
        ('{"type": "resize", "cols": 100000, "rows": 5}', "cols"),
        ('{"type": "resize", "cols": 0, "rows": 5}', "cols"),
        ('{"type": "signal", "signal": "SIGSEGV"}', "signal"),
        ('{"type": "ack", "bytes": -5}', "bytes"),
        ("[" * 5000 + "]" * 5000, None),
        (
            '{"type": "run", "language": "python", "files": [{"name": "a.py", "content": "%%%", "encoding": "base64"}]}',
            "files",
        ),
        (
            '{"type": "run", "language": "python", "files": [{"name": "../escape.py", "content": "x"}]}',
            "files",
        ),
        (
            '{"type": "run", "language": "python", "code": "x", "files": [{"name": "a.py", "content": "x"}]}',
            "code",
        ),
        ('{"type": "run", "language": "python"}', "code"),
    ],
)
async def test_malformed_messages_get_bad_message(
    client: TestClient[Any, Any], raw: str, field: str | None
) -> None:
    async with TermClient.connect(client) as term:
        error = await error_for(term, raw)
        assert error["code"] == "bad_message", error
        assert error.get("field") == field
        await term.send(type="ping")
        await term.next_message("pong")
    await assert_still_serves(client)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            '{"type": "run", "language": "python", "language": "bash", "code": "echo ran"}',
            "language",
        ),
        ('{"type": "run", "type": "ping", "language": "bash", "code": "echo ran"}', "type"),
        (
            '{"type": "run", "language": "bash", "code": "echo ran",'
            ' "limits": {"wall_ms": 1000, "wall_ms": 600000}}',
            "limits.wall_ms",
        ),
    ],
)
async def test_duplicate_keys_are_a_bad_message_and_nothing_runs(
    client: TestClient[Any, Any], raw: str, field: str
) -> None:
    """A proxy and the server must not read one message two ways: refused, not last-wins."""
    async with TermClient.connect(client) as term:
        error = await error_for(term, raw)
        assert (error["code"], error.get("field")) == ("bad_message", field), error
        await term.send(type="ping")
        await term.next_message("pong")
        assert "started" not in term.types() and b"ran" not in term.output
    await assert_still_serves(client)


async def test_unknown_language(term: TermClient) -> None:
    error = await term.run("cobol", "DISPLAY 'HI'.")
    assert (error["code"], error["field"]) == ("unknown_language", "language")
    assert "python" in error["message"]


async def test_stdin_resize_signal_before_a_run_get_not_running(term: TermClient) -> None:
    for raw in ('{"type":"stdin","data":"x"}', '{"type":"eof"}', '{"type":"resize","cols":80,"rows":24}',
                '{"type":"signal","signal":"SIGINT"}', '{"type":"kill"}', '{"type":"ack","bytes":1}'):  # fmt: skip
        assert (await error_for(term, raw))["code"] == "not_running"
    await term.keys(b"binary stdin")
    assert (await term.next_message("error"))["code"] == "not_running"


async def test_second_run_while_one_is_active_gets_already_running(term: TermClient) -> None:
    await term.run("bash", "echo first; sleep 100")
    await term.expect(b"first")
    refused = await term.run("bash", "echo second")
    assert refused["code"] == "already_running"
    await term.send(type="kill")
    assert (await term.wait_exit())["status"] == "killed"


async def test_oversize_frame_closes_with_1009(make_client: MakeClient) -> None:
    client = await make_client(max_message_bytes=4096)
    async with client.ws_connect("/api/v1/ws") as ws:
        await ws.receive_json()
        await ws.send_str('{"type":"stdin","data":"' + "x" * 10_000 + '"}')
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1009
    await assert_still_serves(client)


async def upgrade_status(client: TestClient[Any, Any], origin: str | None) -> int:
    """The HTTP status of a WebSocket upgrade sent with this Origin (or none)."""
    headers = {"Connection": "Upgrade", "Upgrade": "websocket",
               "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip
    if origin is not None:
        headers["Origin"] = origin
    response = await client.get("/api/v1/ws", headers=headers)
    response.close()
    return response.status


async def test_wrong_origin_is_refused_before_the_upgrade(make_client: MakeClient) -> None:
    client = await make_client(allowed_origins=["https://playground.example"])
    for origin, allowed in (("https://evil.example", False), ("https://playground.example", True)):
        assert await upgrade_status(client, origin) == (101 if allowed else 403), origin


async def test_by_default_only_the_servers_own_origin_and_non_browsers_get_in(
    client: TestClient[Any, Any],
) -> None:
    own = f"http://{client.host}:{client.port}"
    for origin, status in ((own, 101), (None, 101), ("http://localhost:1", 403),
                           ("https://evil.example", 403), ("null", 403)):  # fmt: skip
        assert await upgrade_status(client, origin) == status, origin


async def test_missing_or_wrong_token_gets_unauthorized_and_1008(make_client: MakeClient) -> None:
    client = await make_client(tokens=["s3cret"])
    for kind, token in itertools.product(("run", "prepare"), (None, "wrong")):
        async with TermClient.connect(client) as term:
            fields = {} if token is None else {"token": token}
            await term.send(type=kind, language="c", code="int main(void) {}", **fields)
            error = await term.next_message("error", "started", "prepared")
            assert error["code"] == "unauthorized", (kind, error)
            closing = await term.ws.receive(timeout=5)
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008
    async with TermClient.connect(client) as term:
        assert (await term.run_to_exit("python", "print(1)", token="s3cret"))["exit_code"] == 0
    async with TermClient.connect(client, headers={"Authorization": "Bearer s3cret"}) as term:
        assert (await term.run_to_exit("python", "print(1)"))["exit_code"] == 0


async def test_too_many_runs_a_minute_gets_rate_limited(make_client: MakeClient) -> None:
    client = await make_client(capacity={"runs_per_minute": 2})
    async with TermClient.connect(client) as term:
        for _ in range(2):
            assert (await term.run_to_exit("bash", "true"))["exit_code"] == 0
        refused = await term.run("bash", "true")
        assert refused["code"] == "rate_limited"


async def test_repeated_refusals_close_the_socket_with_1008(make_client: MakeClient) -> None:
    client = await make_client(capacity={"refusals_per_minute": 5})
    async with TermClient.connect(client) as term:
        for _ in range(6):
            await term.ws.send_bytes(b"x")
        codes = [(await term.next_message("error", timeout=5))["code"] for _ in range(6)]
        assert codes == ["not_running"] * 6
        closing = await term.ws.receive(timeout=5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1008)
    await assert_still_serves(client)


async def test_repeated_refusals_during_a_run_end_the_run_and_close_with_1008(
    make_client: MakeClient,
) -> None:
    client = await make_client(capacity={"refusals_per_minute": 3})
    async with TermClient.connect(client) as term:
        started = await term.run("bash", "echo running; sleep 100")
        await term.expect(b"running")
        for _ in range(4):
            await term.send(type="resize", cols=0, rows=1)
        closing = await term.ws.receive(timeout=5)
        while closing.type is aiohttp.WSMsgType.TEXT:  # the four errors
            closing = await term.ws.receive(timeout=5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1008)
    assert await asyncio.to_thread(run_remains, started["run_id"]) == ([], False)
    await assert_still_serves(client)


async def test_a_bug_in_a_handler_becomes_internal_and_the_connection_survives(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    async with TermClient.connect(client) as term:
        monkeypatch.setattr(runner, "plan_run", broken)
        error = await term.run("python", "print(1)")
        assert error["code"] == "internal" and "simulated" not in error["message"]
        monkeypatch.undo()
        assert (await term.run_to_exit("python", "print(1)"))["exit_code"] == 0
