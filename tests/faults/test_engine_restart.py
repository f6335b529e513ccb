"""The engine stops and starts again under a live server (issue: reliability).

What a user must see: a live run ends with status `error` saying the engine
stopped it (not `exited 143`, as if the program had been killed by its own
code); a run asked for meanwhile is answered at once; /readyz says why it is
not ready; once the engine is back, the dead warm boxes are dropped and
removed, and warm starts resume — with no server restart.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from ce_ws.config import Settings
from ce_ws.languages import load_languages
from ce_ws.sandbox.docker import pooled_profiles
from tests.faults.conftest import ScratchEngine, staging_folders
from tests.helpers import eventually
from tests.integration.server_process import ServerProcess, server_process
from tests.integration.terminal import TermClient

WAITING_PROGRAM = "print('waiting', flush=True)\ninput()\n"
# Short, so "removed within its interval" is seen inside the test.
REAP_INTERVAL_S = 3.0


async def _metric(session: aiohttp.ClientSession, server: ServerProcess, name: str) -> float:
    async with session.get(f"{server.url}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"metric {name} missing from /metrics")


async def _ready(session: aiohttp.ClientSession, server: ServerProcess) -> tuple[int, str]:
    async with session.get(f"{server.url}/readyz") as response:
        return response.status, await response.text()


async def test_an_engine_restart_is_survived_without_restarting_the_server(
    scratch_engine: ScratchEngine,
) -> None:
    with server_process(
        CE_SANDBOX__DOCKER_URL=scratch_engine.url,
        CE_SANDBOX__REAP_INTERVAL_S=str(REAP_INTERVAL_S),
        CE_POOL__ENABLED="true",
        CE_POOL__PER_PROFILE="1",
    ) as server:
        owner = server.server_id
        async with aiohttp.ClientSession() as session:
            # One box per profile (CE_POOL__PER_PROFILE=1), as the server keeps them.
            full = len(pooled_profiles(Settings(), load_languages()))

            async def pool_full() -> bool:
                return await _metric(session, server, "ce_pool_idle_containers") >= full

            await eventually(pool_full, timeout_s=60, what="the warm pool fills", every_s=0.2)
            async with TermClient.connect_url(server.ws_url) as live:
                started = await live.run("python", WAITING_PROGRAM)
                assert started["type"] == "started", started
                await live.expect(b"waiting")

                await asyncio.to_thread(scratch_engine.stop)

                ended = await live.wait_exit(timeout=30)
                assert ended["status"] == "error", ended
                assert "container engine stopped your program" in ended["message"], ended

                async with TermClient.connect_url(server.ws_url) as meanwhile:
                    asked = time.monotonic()
                    answer = await meanwhile.run("python", "print(1)")
                    if answer["type"] == "started":
                        answer = await meanwhile.wait_exit(timeout=5)
                    answered_s = time.monotonic() - asked
                assert answer["type"] == "exit" and answer["status"] == "error", answer
                assert "not reachable" in answer["message"] and "try again" in answer["message"]
                assert answered_s < 2.0, f"answered after {answered_s:.1f} s"

                status, reason = await _ready(session, server)
                assert status == 503 and "not reachable" in reason, reason

            await asyncio.to_thread(scratch_engine.start)

            async def ready() -> bool:
                return (await _ready(session, server))[0] == 200

            await eventually(ready, timeout_s=30, what="ready again", every_s=0.2)

            def only_live_boxes() -> bool:
                states = scratch_engine.containers(owner)
                return bool(states) and set(states.values()) == {"running"}

            # The boxes the stop killed are dropped from the pool and removed,
            # and the pool is full again of boxes that run.
            await eventually(
                only_live_boxes,
                timeout_s=REAP_INTERVAL_S + 20,
                what="the dead boxes removed, the pool full again",
                every_s=0.5,
            )
            assert len(staging_folders(owner)) == len(scratch_engine.containers(owner))

            hits = await _metric(session, server, "ce_pool_hits")

            async with TermClient.connect_url(server.ws_url) as after:
                for _ in range(3):
                    await eventually(pool_full, timeout_s=30, what="the pool refilled", every_s=0.2)
                    ended = await after.run_to_exit("python", "print(6 * 7)")
                    assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended
            assert b"42" in after.output
            assert await _metric(session, server, "ce_pool_hits") >= hits + 3, "no warm start"
    assert scratch_engine.containers(owner) == {}
    assert staging_folders(owner) == []
