"""Live runs across replicas sharing a Redis: one cap per client, and a kill finds its run.

A client's `CE_CAPACITY__MAX_RUNS_PER_CLIENT` counts its runs on every
replica; a replica that dies stops holding its client's places after its
lease (its containers are reaped by its restart with the same id); an
admin kill that reaches the wrong replica is forwarded to the right one;
with Redis stopped, runs go on, capped per replica, and nothing is lost.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from ce_ws.runs.shared_runs import LEASE_S, RENEW_S
from tests.helpers import eventually
from tests.integration.balancer import client_from
from tests.integration.redis_server import redis_replica, redis_server, two_replicas
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID, project_containers

WAITING = "echo up; read line; echo done"
ADMIN_TOKEN = "test-admin-token-0123456789"
ONE_RUN_EACH = {"CE_CAPACITY__MAX_RUNS_PER_CLIENT": "1", "CE_ADMIN_TOKEN": ADMIN_TOKEN}


async def start_waiting(term: TermClient) -> dict[str, Any]:
    """Ask for the waiting run; its first answer (`started`, or `queued` behind the cap)."""
    await term.send(type="run", language="bash", code=WAITING)
    return await term.next_message("started", "queued", "error")


async def finish(term: TermClient) -> dict[str, Any]:
    await term.expect(b"up")
    await term.keys("go\r")
    ended: dict[str, Any] = await term.wait_exit()
    assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended
    return ended


async def test_a_clients_cap_holds_across_replicas(tmp_path: Path) -> None:
    # One run slot per replica: the run waiting for its client's run elsewhere holds none.
    with two_replicas(tmp_path, **ONE_RUN_EACH, CE_CAPACITY__MAX_RUNS="1") as (_, a, b):
        async with (
            client_from("127.0.0.2", a.url) as on_a,
            client_from("127.0.0.2", b.url) as on_b,
            client_from("127.0.0.3", b.url) as neighbour,
        ):
            assert (await start_waiting(on_a))["type"] == "started"
            # The same client on the other replica waits behind its run on A...
            assert (await start_waiting(on_b))["type"] == "queued"
            # ...while another client starts at once there.
            assert (await start_waiting(neighbour))["type"] == "started"
            await asyncio.sleep(1.0)
            await finish(neighbour)  # B's one slot is free again; A's run still holds the cap
            assert "started" not in on_b.types(), on_b.messages
            await finish(on_a)
            began = time.monotonic()
            await on_b.next_message("started", timeout=5)
            waited_s = time.monotonic() - began
            await finish(on_b)
    assert waited_s < 2.0, f"the place freed on A reached B after {waited_s:.1f} s"


async def test_a_crashed_replica_lets_go_of_its_clients_after_its_lease(tmp_path: Path) -> None:
    with redis_server() as redis, redis_replica(redis, tmp_path, "b", **ONE_RUN_EACH) as b:
        async with (
            client_from("127.0.0.2", b.url) as on_b,
            client_from("127.0.0.3", b.url) as bystander,
        ):
            assert (await start_waiting(bystander))["type"] == "started"
            with redis_replica(redis, tmp_path, "a", **ONE_RUN_EACH) as a:
                async with client_from("127.0.0.2", a.url) as on_a:
                    assert (await start_waiting(on_a))["type"] == "started"
                    await on_a.expect(b"up")
                    assert (await start_waiting(on_b))["type"] == "queued"
                    a.crash()  # kill -9: its run's container stays on the engine
            # B's run gets the place once A's lease ran out, and runs.
            await on_b.next_message("started", timeout=LEASE_S + 2 * RENEW_S + 5)
            await finish(on_b)
            # The other replica's run never noticed, and new sessions work there.
            await finish(bystander)
            async with client_from("127.0.0.4", b.url) as newcomer:
                assert (await start_waiting(newcomer))["type"] == "started"
                await finish(newcomer)
            crashed_owner = f"{TEST_SERVER_ID}-a"
            assert any(crashed_owner in owner for owner in _owners()), "A's box is gone already?"
            # A restarted with its id reaps what it left; B's runs never noticed.
            with redis_replica(redis, tmp_path, "a", **ONE_RUN_EACH):
                await eventually(lambda: crashed_owner not in " ".join(_owners()), timeout_s=10,
                                 what="the crashed replica's box reaped at its restart")  # fmt: skip


def _owners() -> list[str]:
    """The owner labels of this session's containers."""
    listing = subprocess.run(
        ["docker", "ps", "-a", "--format", '{{.Label "ce.owner"}}', "--filter", "label=ce.owner"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [owner for owner in listing.stdout.split() if owner.startswith(TEST_SERVER_ID)]


async def test_a_kill_reaching_the_other_replica_is_forwarded_to_the_run(tmp_path: Path) -> None:
    with two_replicas(tmp_path, **ONE_RUN_EACH) as (_, a, b):
        async with (
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin,
            TermClient.connect_url(a.ws_url) as owner,
        ):
            started = await start_waiting(owner)
            run_id = started["run_id"]

            async def kill_through_b() -> bool:
                async with admin.post(f"{b.url}/admin/runs/{run_id}/kill") as response:
                    if response.status == 404:  # not yet renewed into Redis
                        return False
                    assert response.status == 200, await response.text()
                    assert (await response.json())["replica"] == a.url
                    return True

            await eventually(kill_through_b, timeout_s=2 * RENEW_S + 2, what="the kill forwarded")
            ended = await owner.wait_exit()
            assert ended["status"] == "killed", ended
            async with admin.post(f"{b.url}/admin/runs/{run_id}/kill") as again:
                assert again.status == 404
                assert (await again.json())["error"]["code"] == "unknown_run"


async def test_with_redis_stopped_runs_go_on_and_nothing_is_left(tmp_path: Path) -> None:
    with two_replicas(tmp_path, **ONE_RUN_EACH) as (redis, a, b):
        redis.stop()
        async with (
            client_from("127.0.0.2", a.url) as on_a,
            client_from("127.0.0.2", b.url) as on_b,
        ):
            # Each replica caps its clients alone: one run each, so two in all.
            assert (await start_waiting(on_a))["type"] == "started"
            assert (await start_waiting(on_b))["type"] == "started"
            await finish(on_a)
            await finish(on_b)
        redis.start()
        async with client_from("127.0.0.2", a.url) as later:
            assert (await start_waiting(later))["type"] == "started"
            await finish(later)
    assert project_containers() == []


async def test_a_clients_sockets_at_once_are_one_cap_across_replicas(tmp_path: Path) -> None:
    two = {"CE_CAPACITY__MAX_CONNECTIONS_PER_CLIENT": "2"}
    with two_replicas(tmp_path, **ONE_RUN_EACH, **two) as (_, a, b):
        async with client_from("127.0.0.2", a.url), client_from("127.0.0.2", b.url):
            # A third socket of the same client, on either replica, is one too many...
            refused, code = await _refused_socket("127.0.0.2", b.url)
            assert refused["code"] == "rate_limited" and code == 1008, refused
            # ...while another client is welcome.
            async with client_from("127.0.0.3", b.url) as neighbour:
                assert (await start_waiting(neighbour))["type"] == "started"
                await finish(neighbour)
        # Closed, their places are free again at once.
        async with client_from("127.0.0.2", a.url), client_from("127.0.0.2", b.url) as again:
            assert (await start_waiting(again))["type"] == "started"
            await finish(again)


async def _refused_socket(address: str, url: str) -> tuple[dict[str, Any], int | None]:
    """Open a socket from `address` that the server refuses: its error, and its close code."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.ws_connect(f"{url.replace('http', 'ws', 1)}/api/v1/ws") as ws,
    ):
        refusal = await ws.receive_json(timeout=10)
        await ws.receive(timeout=10)
        return refusal, ws.close_code
