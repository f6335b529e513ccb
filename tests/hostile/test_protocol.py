"""Corpus group 20 and the server-side abuse limits: hostile WebSocket clients.

Each abuse gets a precise `error` (or close code, or HTTP status) and leaves
the server serving: after each case the canary still runs on time. The
runtime matters little here, but the corpus runs whole on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import aiohttp

from tests.helpers import eventually
from tests.hostile.conftest import make_corpus
from tests.hostile.harness import Corpus
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import run_remains

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
BARRAGE = [
    ("{not json", "bad_message", None),
    ("[" * 10_000 + "]" * 10_000, "bad_message", None),
    ('{"type": "teleport"}', "bad_message", None),
    ('{"type": "stdin", "data": "before any run"}', "not_running", None),
    ('{"type": "resize", "cols": 100000, "rows": 100000}', "bad_message", "cols"),
    ('{"type": "signal", "signal": "SIGSEGV"}', "bad_message", "signal"),
    ('{"type": "run", "language": "python", "code": "x", "limits": {"pids": 99999}}',
     "limit_exceeded", "limits.pids"),
]  # fmt: skip


async def assert_canary_on_time(corpus: Corpus) -> None:
    budget = await corpus.canary_budget_s()
    assert await corpus.canary() < budget


async def test_malformed_and_out_of_place_messages_get_precise_errors(corpus: Corpus) -> None:
    """Invalid JSON, deep nesting, unknown types, stdin before run, absurd resize..."""
    async with corpus.connect() as term:
        for raw, code, field in BARRAGE:
            await term.ws.send_str(raw)
            error = await term.next_message("error", timeout=5)
            assert (error["code"], error.get("field")) == (code, field), raw[:60]
        started = await term.run("bash", "echo first; sleep 100")
        assert started["type"] == "started"
        second = await term.run("bash", "echo second")
        assert second["code"] == "already_running"
        await term.send(type="kill")
        assert (await term.wait_exit())["status"] == "killed"
    await assert_canary_on_time(corpus)


async def test_a_message_over_the_size_cap_closes_with_1009(
    make_client: MakeClient, runtime: str
) -> None:
    corpus = await make_corpus(make_client, runtime, max_message_bytes=4096)
    async with corpus.connect() as term:
        await term.ws.send_str(json.dumps({"type": "stdin", "data": "x" * 10_000}))
        closing = await term.ws.receive(timeout=5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1009)
    await assert_canary_on_time(corpus)


async def test_wrong_origin_gets_403_and_missing_token_gets_1008(
    make_client: MakeClient, runtime: str
) -> None:
    client = await make_client(
        sandbox={"runtime": runtime}, allowed_origins=["https://ok.example"], tokens=["s3cret"]
    )
    response = await client.get("/api/v1/ws", headers={**UPGRADE, "Origin": "https://evil.example"})
    assert response.status == 403
    response.close()
    async with TermClient.connect(client) as term:
        refused = await term.run("python", "print(1)")
        assert refused["code"] == "unauthorized"
        closing = await term.ws.receive(timeout=5)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1008)
    async with TermClient.connect(client, headers={"Authorization": "Bearer s3cret"}) as term:
        assert (await term.run_to_exit("python", "print(1)"))["exit_code"] == 0


async def test_connections_beyond_the_per_client_cap_are_refused(
    make_client: MakeClient, runtime: str
) -> None:
    corpus = await make_corpus(make_client, runtime, capacity={"max_connections_per_client": 3})
    assert corpus.client is not None
    async with contextlib.AsyncExitStack() as stack:
        held = [await stack.enter_async_context(corpus.connect()) for _ in range(3)]
        async with corpus.client.ws_connect("/api/v1/ws") as ws:
            refusal = await ws.receive_json(timeout=5)
            assert refusal["type"] == "error" and refusal["code"] == "rate_limited"
            closing = await ws.receive(timeout=5)
            assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1008)
        await held[0].ws.close()
        await asyncio.sleep(0.2)  # the server counts the closed one out
        # A slot is free again: the canary (a fourth connection) runs on time.
        await assert_canary_on_time(corpus)


async def test_a_client_that_says_nothing_is_closed_after_the_first_message_deadline(
    make_client: MakeClient, runtime: str
) -> None:
    corpus = await make_corpus(make_client, runtime, first_message_s=0.5)
    async with corpus.connect() as silent:
        began = time.monotonic()
        closing = await silent.ws.receive(timeout=10)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1008)
        # Only a generous bound: timing here is noisy, and the deadline is 0.5 s.
        assert time.monotonic() - began < 10
    async with corpus.connect() as talker:  # one message in time is enough
        await talker.send(type="ping")
        await talker.next_message("pong")
        await asyncio.sleep(1.0)
        await talker.send(type="ping")
        await talker.next_message("pong")
    await assert_canary_on_time(corpus)


async def test_a_client_that_stops_answering_pings_loses_its_run(
    make_client: MakeClient, runtime: str
) -> None:
    """Heartbeat: a silent peer is dropped and its container removed."""
    corpus = await make_corpus(make_client, runtime, heartbeat_s=0.5)
    assert corpus.client is not None
    async with corpus.client.ws_connect("/api/v1/ws", autoping=False) as ws:
        await ws.receive_json(timeout=5)  # hello
        await ws.send_str(json.dumps({"type": "run", "language": "bash", "code": "sleep 100"}))
        run_id = await _started_answering_pings(ws)
        began = time.monotonic()
        live = {aiohttp.WSMsgType.PING, aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY}
        while (message := await ws.receive(timeout=10)).type in live:
            continue  # pings now go unanswered
        assert message.type in {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED}, message
        assert time.monotonic() - began < 10  # heartbeat 0.5 s; generous under load

    async def removed() -> bool:
        return await asyncio.to_thread(run_remains, run_id) == ([], False)

    await eventually(removed, what="the dropped client's run removed", every_s=0.1)
    await assert_canary_on_time(corpus)


async def test_a_client_that_keeps_sending_refused_messages_is_closed(
    make_client: MakeClient, runtime: str
) -> None:
    """Repeated abuse: stdin frames with no run, each refused, until close 1008."""
    corpus = await make_corpus(make_client, runtime, capacity={"refusals_per_minute": 20})
    async with corpus.connect() as term:
        for _ in range(1000):
            if term.ws.closed:
                break
            with contextlib.suppress(ConnectionResetError):
                await term.ws.send_bytes(b"spam")
        refused = 0
        while (message := await term.ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT:
            refused += json.loads(message.data)["type"] == "error"
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1008)
        # The budget of 20, then the one that found it empty; the budget
        # refills by one every 3 s, which a loaded machine may take.
        assert 21 <= refused < 30, refused
    await assert_canary_on_time(corpus)


async def _started_answering_pings(ws: aiohttp.ClientWebSocketResponse) -> str:
    while True:
        message = await ws.receive(timeout=30)
        if message.type is aiohttp.WSMsgType.PING:
            await ws.pong(message.data)
        elif message.type is aiohttp.WSMsgType.TEXT:
            data: dict[str, Any] = json.loads(message.data)
            if data["type"] == "started":
                return str(data["run_id"])


async def test_runs_beyond_the_rate_limit_are_refused(
    make_client: MakeClient, runtime: str
) -> None:
    corpus = await make_corpus(make_client, runtime, capacity={"runs_per_minute": 2})
    async with corpus.connect() as term:
        for _ in range(2):
            assert (await term.run_to_exit("bash", "true"))["exit_code"] == 0
        refused = await term.run("bash", "true")
        assert (refused["type"], refused["code"]) == ("error", "rate_limited")
