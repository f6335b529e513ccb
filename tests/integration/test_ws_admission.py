"""Admission: global and per-client caps, a bounded line, busy, 1013, 30 at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.rest import metric, metrics
from tests.integration.terminal import TermClient

SLEEPER = "echo running; sleep 100"


async def test_beyond_capacity_runs_queue_then_busy(make_client: MakeClient) -> None:
    client = await make_client(capacity={"max_runs": 1, "max_queue": 1})
    async with contextlib.AsyncExitStack() as stack:
        first, second, third = [
            await stack.enter_async_context(TermClient.connect(client)) for _ in range(3)
        ]
        await first.run("bash", SLEEPER)
        await first.expect(b"running")
        await second.send(type="run", language="bash", code="echo second ran")
        assert (await second.next_message("queued"))["position"] == 1
        assert metric(await metrics(client), "ce_queued_runs") == 1
        busy = await third.run("bash", "echo never")
        assert busy["type"] == "error" and busy["code"] == "busy"
        await first.send(type="kill")
        await first.wait_exit()
        await second.next_message("started")
        exit_message = await second.wait_exit()
        assert exit_message["exit_code"] == 0 and b"second ran" in second.output
        assert metric(await metrics(client), "ce_queued_runs") == 0
        assert metric(await metrics(client), "ce_runs_rejected_total", reason="busy") == 1
        # the refused client can run once there is room
        assert (await third.run_to_exit("bash", "true"))["exit_code"] == 0


async def test_per_client_cap_queues_the_same_clients_extra_runs(make_client: MakeClient) -> None:
    client = await make_client(capacity={"max_runs": 8, "max_runs_per_client": 1})
    async with TermClient.connect(client) as first, TermClient.connect(client) as second:
        await first.run("bash", SLEEPER)
        await first.expect(b"running")
        await second.send(type="run", language="bash", code="echo ok")
        assert (await second.next_message("queued", "started"))["type"] == "queued"
        await second.send(type="kill")  # leaving the line before starting
        await first.send(type="kill")
        await first.wait_exit()
        assert (await second.run_to_exit("bash", "echo ok"))["exit_code"] == 0


@contextlib.asynccontextmanager
async def connect_from(client: TestClient[Any, Any], address: str) -> AsyncIterator[TermClient]:
    """A WebSocket from another loopback address: another client to the server."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(client.make_url("/api/v1/ws")) as ws,
    ):
        term = TermClient(ws)
        term.hello = await term.next_message("hello")
        yield term


async def test_one_clients_extra_runs_wait_in_its_own_line_not_the_shared_one(
    make_client: MakeClient,
) -> None:
    """Client A at its cap queues extras in its own line; B starts at once, C still gets a place."""
    client = await make_client(
        capacity={
            "max_runs": 2,
            "max_runs_per_client": 1,
            "max_queue": 1,
            "max_queue_per_client": 2,
        }
    )
    async with contextlib.AsyncExitStack() as stack:
        a1, a2, a3, a4 = [
            await stack.enter_async_context(connect_from(client, "127.0.0.1")) for _ in range(4)
        ]
        assert (await a1.run("bash", SLEEPER))["type"] == "started"
        for extra in (a2, a3):
            await extra.send(type="run", language="bash", code="echo extra")
            assert (await extra.next_message("queued", "started", "error"))["type"] == "queued"
        refused = await a4.run("bash", "echo never")
        assert (refused["type"], refused.get("code")) == ("error", "busy"), refused
        b1 = await stack.enter_async_context(connect_from(client, "127.0.0.2"))
        assert (await b1.run("bash", SLEEPER))["type"] == "started"  # a slot was free
        c1 = await stack.enter_async_context(connect_from(client, "127.0.0.3"))
        await c1.send(type="run", language="bash", code="echo c")
        # Every slot is taken now; the shared place A's extras did not take is C's.
        assert (await c1.next_message("queued", "started", "error"))["type"] == "queued"
        assert metric(await metrics(client), "ce_queued_runs") == 3
        for waiting in (c1, a3, a2):  # leave the line before any of them starts
            await waiting.send(type="kill")
        await asyncio.sleep(0.2)
        assert metric(await metrics(client), "ce_queued_runs") == 0
        for running in (a1, b1):
            await running.send(type="kill")
            assert (await running.wait_exit())["status"] == "killed"


async def test_connections_beyond_the_cap_are_closed_with_1013(make_client: MakeClient) -> None:
    client = await make_client(capacity={"max_connections": 1})
    async with TermClient.connect(client), client.ws_connect("/api/v1/ws") as ws:
        message = await ws.receive(timeout=5)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.data == 1013


async def test_thirty_concurrent_interactive_runs_all_complete(make_client: MakeClient) -> None:
    client = await make_client(capacity={"max_runs": 32, "max_runs_per_client": 32})
    program = "name = input('who? ')\nprint(f'hi {name}')"

    async def one(number: int) -> dict:
        async with TermClient.connect(client) as term:
            started = await term.run("python", program)
            assert started["type"] == "started", started
            await term.expect(b"who? ", timeout=60)
            await term.keys(f"user{number}\r")
            await term.expect(f"hi user{number}".encode(), timeout=60)
            return await term.wait_exit(timeout=60)

    results = await asyncio.gather(*(one(n) for n in range(30)))
    assert [r["status"] for r in results] == ["exited"] * 30
    assert all(r["exit_code"] == 0 for r in results)
