"""A server killed with SIGKILL: its next start removes everything it left.

Runs live, warm boxes idle: nothing of that server id remains within 5 s of
its restart, and nothing of another server on the same engine is touched.
On the scratch engine: the crash may cut a pool refill between the engine's
create and the suite's spec recorder, which the main engine's check would
rightly call a container made behind its back.
"""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp

from tests.faults.conftest import ScratchEngine, staging_folders
from tests.helpers import eventually
from tests.integration.server_process import server_process
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID

GONE_WITHIN_S = 5.0
SLEEPER = "echo running; sleep 100"


async def _pool_has_boxes(url: str) -> bool:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        text = await response.text()
    return any(
        line.startswith("ce_pool_idle_containers ") and float(line.split()[1]) >= 1
        for line in text.splitlines()
    )


async def test_a_killed_server_leaves_nothing_once_it_starts_again(
    scratch_engine: ScratchEngine,
) -> None:
    crashing, bystander = f"{TEST_SERVER_ID}-crash", f"{TEST_SERVER_ID}-bystander"
    engine = {"CE_SANDBOX__DOCKER_URL": scratch_engine.url, "CE_POOL__PER_PROFILE": "1"}
    with server_process(server_id=bystander, **engine) as other:
        async with TermClient.connect_url(other.ws_url) as theirs:
            assert (await theirs.run("bash", SLEEPER))["type"] == "started"
            await theirs.expect(b"running")
            with server_process(server_id=crashing, clean_exit=False, **engine) as server:
                await eventually(lambda: _pool_has_boxes(server.url), timeout_s=60, every_s=0.2)
                async with TermClient.connect_url(server.ws_url) as ours:
                    assert (await ours.run("bash", SLEEPER))["type"] == "started"
                    await ours.expect(b"running")
                    os.kill(server.process.pid, signal.SIGKILL)
                    await asyncio.to_thread(server.process.wait)
            left, left_folders = scratch_engine.containers(crashing), staging_folders(crashing)
            assert len(left) >= 2 and len(left_folders) >= 2, "the crash left its run and pool"
            theirs_before = scratch_engine.containers(bystander)

            def crash_cleaned() -> bool:
                now = scratch_engine.containers(crashing)
                return not set(left) & set(now) and not set(left_folders) & set(
                    staging_folders(crashing)
                )

            # From the moment the restarted server answers.
            with server_process(server_id=crashing, **engine):
                await eventually(
                    crash_cleaned, timeout_s=GONE_WITHIN_S, what="what the crash left", every_s=0.2
                )
            # None of theirs removed; their pool may still be filling (new boxes, or
            # one that was only created then) while the crash is cleaned up.
            assert set(theirs_before) <= set(scratch_engine.containers(bystander))
            assert "exit" not in theirs.types(), "the other server's run was touched"
            await theirs.send(type="kill")
            assert (await theirs.wait_exit())["status"] == "killed"
    assert scratch_engine.containers(crashing) == scratch_engine.containers(bystander) == {}
