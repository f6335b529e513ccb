"""The proxies and networks live and die with their server, and a flood through one hurts no one."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.helpers import eventually, only_engine
from tests.integration.network.conftest import PAGE, MakeClient, Upstream, network_settings
from tests.integration.rest import execute
from tests.integration.server_process import server_process
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID, leftovers, project_networks


def _network_env(upstream: Upstream) -> dict[str, str]:
    return {
        "CE_NETWORK": json.dumps(network_settings(upstream)),
        "CE_POOL__ENABLED": "false",
    }


async def test_proxy_and_networks_are_gone_after_the_server_stops(upstream: Upstream) -> None:
    with server_process(**_network_env(upstream)) as server:
        async with TermClient.connect_url(server.ws_url) as term:
            started = await term.run("bash", "echo running; sleep 100", network="web")
            assert started["type"] == "started", started
            await term.expect(b"running")
            containers, _ = await asyncio.to_thread(leftovers)
            networks = await asyncio.to_thread(project_networks)
            # The run and a proxy per policy; the run's own network (the egress one is the suite's).
            assert len(containers) == 3 + len(networks) and len(networks) == 1, containers
    assert await asyncio.to_thread(leftovers) == ([], [])


async def test_restart_after_sigkill_removes_the_proxy_and_networks(upstream: Upstream) -> None:
    server_id = f"{TEST_SERVER_ID}-netcrash"
    with server_process(server_id=server_id, **_network_env(upstream)) as server:
        async with TermClient.connect_url(server.ws_url) as term:
            await term.run("bash", "echo running; sleep 100", network="web")
            await term.expect(b"running")
            server.crash()
    crashed, _ = await asyncio.to_thread(leftovers)
    assert len(crashed) == 4, crashed  # the run, two proxies, the run's network
    with server_process(server_id=server_id, **_network_env(upstream)):
        await eventually(
            lambda: not set(crashed) & set(leftovers()[0]),
            timeout_s=15,
            what="the crashed server's proxy, run and network removed",
        )
    assert await asyncio.to_thread(leftovers) == ([], [])


# Opens connections through the proxy as fast as it can, for a while.
FLOOD = """
import socket, os, time
proxy = os.environ["HTTP_PROXY"].split("//")[1].split(":")
held, deadline = [], time.monotonic() + 8
while time.monotonic() < deadline:
    try:
        s = socket.create_connection((proxy[0], int(proxy[1])), timeout=2)
        s.sendall(b"CONNECT other.test:443 HTTP/1.1\\r\\nHost: other.test:443\\r\\n\\r\\n")
        held.append(s)
        if len(held) > 200:
            held.pop(0).close()
    except OSError:
        time.sleep(0.01)
print("flooded")
"""
CANARY = (
    "import urllib.request as u; print(u.urlopen('http://allowed.test:8000/', timeout=10).status)"
)


async def test_a_canary_beside_a_connection_flood_finishes_on_time(
    make_networked: MakeClient,
) -> None:
    client = await make_networked()
    began = time.monotonic()
    await execute(client, language="python", network="web", code=CANARY)
    alone_s = time.monotonic() - began
    flood = asyncio.ensure_future(execute(client, language="python", network="web", code=FLOOD))
    await asyncio.sleep(2)
    began = time.monotonic()
    canary: dict[str, Any] = await execute(client, language="python", network="web", code=CANARY)
    beside_s = time.monotonic() - began
    assert canary["stdout"] == "200\n", canary
    assert beside_s < max(3 * alone_s, alone_s + 3.0), (alone_s, beside_s)
    assert (await flood)["stdout"] == "flooded\n"


async def test_a_networked_run_claims_a_warm_box_of_its_policy(
    make_networked: MakeClient, upstream: Upstream
) -> None:
    # Every profile of every policy (and of none) warm: 3 networks x 2 terminals x 2 kinds.
    client = await make_networked(pool={"enabled": True, "per_profile": 1, "max_total": 12})
    pool = only_engine(client.app).pool
    assert pool is not None
    await eventually(lambda: pool.size >= 12, timeout_s=90, what="12 warm boxes", every_s=0.2)
    warm_ids = pool.idle_box_ids()
    code = (
        "import urllib.request as u; print(u.urlopen('http://allowed.test:8000/').read().decode())"
    )
    async with TermClient.connect(client) as term:
        started = await term.run("python", code, network="web")
        exit_message = await term.wait_exit()
    assert exit_message["exit_code"] == 0 and PAGE.encode() in term.output, term.output
    assert started["run_id"] in warm_ids, "the run should have used its policy's warm box"
