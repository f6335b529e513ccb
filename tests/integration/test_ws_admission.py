"""Admission: global and per-client caps, a bounded line, busy, 1013, 30 at once."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

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
