"""The warm pool: runs claim started containers, which are never reused."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp.test_utils import TestClient

from ce_ws.config import PoolSettings, Settings
from ce_ws.sandbox.base import BoxProfile
from ce_ws.sandbox.pool import WarmPool
from tests.helpers import eventually, only_engine
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID, project_containers, run_remains

MIB = 1024 * 1024


async def readiness(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/readyz")
    body: dict[str, Any] = await response.json()
    return body


async def wait_for_idle(
    client: TestClient[Any, Any], count: int, timeout_s: float = 20
) -> dict[str, Any]:
    async def filled() -> bool:
        return bool((await readiness(client))["pool_idle"] >= count)

    await eventually(filled, timeout_s=timeout_s, what=f"{count} idle boxes", every_s=0.1)
    return await readiness(client)


async def test_run_claims_a_warm_container_and_the_pool_refills(make_client: MakeClient) -> None:
    client = await make_client(pool={"enabled": True, "per_profile": 1, "max_total": 4})
    before = await wait_for_idle(client, 4)
    pool = only_engine(client.app).pool
    warm_ids = pool.idle_box_ids()
    async with TermClient.connect(client) as term:
        started = await term.run("python", "print('warm hello')")
        exit_message = await term.wait_exit()
    assert exit_message["exit_code"] == 0 and b"warm hello" in term.output
    assert started["run_id"] in warm_ids, "the run should have used a pooled container"
    after = await wait_for_idle(client, 4)
    assert after["pool_hits"] == before["pool_hits"] + 1
    # The used container is destroyed, never returned to the pool.
    assert await asyncio.to_thread(run_remains, started["run_id"]) == ([], False)
    assert started["run_id"] not in pool.idle_box_ids()


async def test_run_with_other_fixed_limits_takes_the_cold_path(make_client: MakeClient) -> None:
    client = await make_client(pool={"enabled": True, "per_profile": 1, "max_total": 4})
    before = await wait_for_idle(client, 4)
    async with TermClient.connect(client) as term:
        exit_message = await term.run_to_exit("python", "print('cold')", limits={"memory_mb": 128})
    assert exit_message["exit_code"] == 0
    after = await readiness(client)
    assert after["pool_misses"] == before["pool_misses"] + 1
    assert after["pool_hits"] == before["pool_hits"]


async def test_pool_limits_hold_on_count_and_memory(make_client: MakeClient) -> None:
    client = await make_client(pool={"enabled": True, "per_profile": 4, "max_total": 3})
    await wait_for_idle(client, 3)
    await asyncio.sleep(1)
    assert (await readiness(client))["pool_idle"] == 3
    engine = only_engine(client.app).engine
    profile = BoxProfile.of(Settings().defaults, tty=True, tmp_exec=False, runtime="runc")
    budget_for_two = 2 * profile.memory_mb * MIB + MIB
    pool = WarmPool(
        engine, PoolSettings(per_profile=5), profiles=[profile], memory_budget_bytes=budget_for_two
    )
    filler = asyncio.create_task(pool.keep_filled())
    try:
        await eventually(lambda: pool.size >= 2, timeout_s=20, what="two boxes started")
        await asyncio.sleep(1)
        assert pool.size == 2, "the memory budget allows two boxes"
    finally:
        filler.cancel()
        await asyncio.gather(filler, return_exceptions=True)
        await pool.close()


async def test_old_idle_containers_are_recycled(make_client: MakeClient) -> None:
    client = await make_client(
        pool={"enabled": True, "per_profile": 1, "max_total": 1, "max_age_s": 1}
    )
    await wait_for_idle(client, 1)
    first = only_engine(client.app).pool.idle_box_ids()

    def replaced() -> bool:
        current = only_engine(client.app).pool.idle_box_ids()
        return bool(current) and not current & first

    await eventually(replaced, timeout_s=15, what="the old box recycled", every_s=0.2)
    for box_id in first:
        assert await asyncio.to_thread(run_remains, box_id) == ([], False)


async def test_pool_off_keeps_no_idle_containers(make_client: MakeClient) -> None:
    client = await make_client(pool={"enabled": False})
    await asyncio.sleep(0.5)
    assert await asyncio.to_thread(project_containers) == []
    assert "pool_idle" not in await readiness(client)
    async with TermClient.connect(client) as term:
        assert (await term.run_to_exit("bash", "echo cold"))["exit_code"] == 0


async def test_metrics_show_the_pool(make_client: MakeClient) -> None:
    client = await make_client(pool={"enabled": True, "per_profile": 1, "max_total": 4})
    await wait_for_idle(client, 4)
    text = await (await client.get("/metrics")).text()
    assert "ce_pool_idle_containers 4.0" in text
    assert "ce_container_create_start_seconds_count" in text


KERNEL_PROBES = {
    "python": "import os; print('kernel=' + os.uname().release + '=')",
    "bash": "echo kernel=$(uname -r)=",
}


async def kernels_seen(client: TestClient[Any, Any]) -> dict[str, str]:
    """The kernel release each language's program sees (gVisor reports its own)."""
    seen = {}
    for language, code in KERNEL_PROBES.items():
        async with TermClient.connect(client) as term:
            assert (await term.run_to_exit(language, code))["exit_code"] == 0
            seen[language] = term.text().split("kernel=")[1].split("=")[0]
    return seen


async def test_a_language_with_its_own_runtime_runs_there_warm_and_cold(
    make_client: MakeClient,
) -> None:
    runtimes = {"language_runtimes": {"python": "runsc"}}
    warm = await make_client(sandbox=runtimes, pool={"enabled": True, "max_total": 6})
    # Interpreted on runc, compiled on runc, interpreted on runsc; each with and without a tty.
    await wait_for_idle(warm, 6)
    seen = await kernels_seen(warm)
    assert seen["bash"] == os.uname().release != seen["python"]
    assert (await readiness(warm))["pool_hits"] == 2
    # A server id of its own: two live servers of one id reap each other's boxes.
    cold_id = f"{TEST_SERVER_ID}-cold"
    cold = await make_client(server_id=cold_id, sandbox=runtimes, pool={"enabled": False})
    assert await kernels_seen(cold) == seen
