"""The warm pool gives way: to a host short of memory, and to a refreshed image."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator

import pytest

from ce_ws.config import PoolSettings, Settings
from ce_ws.sandbox.base import BoxProfile
from ce_ws.sandbox.pool import MemoryPressure, WarmPool, host_available_bytes
from tests.helpers import eventually, only_engine
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.integration.test_pool import readiness, wait_for_idle
from tests.leftovers import project_containers, run_remains

MIB = 1024 * 1024
POOL_TAG = "code-executor-runtime-pool-image-test"


def image_id(image: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "-f", "{{ .Id }}", image],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def container_image(box_id: str) -> str:
    return subprocess.run(
        ["docker", "container", "inspect", "-f", "{{ .Image }}", f"ce-{box_id}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def pool_tag() -> Iterator[str]:
    """A tag of this test's own on the runtime image; removed after the server is gone."""
    subprocess.run(["docker", "tag", "code-executor-runtime", POOL_TAG], check=True)
    yield POOL_TAG
    subprocess.run(["docker", "image", "rm", POOL_TAG], capture_output=True, check=False)


async def test_idle_boxes_of_a_replaced_image_are_recycled(
    pool_tag: str, make_client: MakeClient
) -> None:
    client = await make_client(
        sandbox={"image": pool_tag}, pool={"enabled": True, "per_profile": 1, "max_total": 2}
    )
    await wait_for_idle(client, 2)
    pool = only_engine(client.app).pool
    assert pool is not None
    old_boxes, old_image = pool.idle_box_ids(), image_id(pool_tag)
    assert {await asyncio.to_thread(container_image, box) for box in old_boxes} == {old_image}

    # The refresh: the same name now points at another image.
    subprocess.run(
        ["docker", "build", "--network=none", "-q", "-t", pool_tag, "-"],
        input="FROM code-executor-runtime\nLABEL ce.pool-image-test=refreshed\n",
        text=True, check=True, capture_output=True,
    )  # fmt: skip
    new_image = image_id(pool_tag)
    assert new_image != old_image

    def replaced() -> bool:
        current = pool.idle_box_ids()
        return len(current) == 2 and not current & old_boxes

    await eventually(replaced, timeout_s=30, what="idle boxes of the new image", every_s=0.2)
    assert {await asyncio.to_thread(container_image, box) for box in pool.idle_box_ids()} == {
        new_image
    }
    for box_id in old_boxes:
        assert await asyncio.to_thread(run_remains, box_id) == ([], False)
    async with TermClient.connect(client) as term:
        assert (await term.run_to_exit("python", "print('new image')"))["exit_code"] == 0


async def test_a_memory_floor_above_the_host_keeps_the_pool_empty_and_runs_cold(
    make_client: MakeClient,
) -> None:
    floor_mb = host_available_bytes() // MIB + 1024
    client = await make_client(
        pool={"enabled": True, "per_profile": 1, "max_total": 2, "min_host_available_mb": floor_mb}
    )
    await asyncio.sleep(1.5)
    before = await readiness(client)
    assert before["pool_idle"] == 0
    assert await asyncio.to_thread(project_containers) == []
    async with TermClient.connect(client) as term:
        started = await term.run("python", "print('cold under pressure')")
        assert (await term.wait_exit())["exit_code"] == 0
    assert b"cold under pressure" in term.output
    after = await readiness(client)
    assert after["pool_misses"] == before["pool_misses"] + 1 and after["pool_idle"] == 0

    async def removed() -> bool:
        return await asyncio.to_thread(run_remains, started["run_id"]) == ([], False)

    # The `exit` goes out before the container's removal, which takes at most 5 s.
    await eventually(removed, timeout_s=5, what="the cold run's container and folder gone")


async def test_the_pool_sheds_its_idle_boxes_when_memory_falls_below_the_floor(
    make_client: MakeClient,
) -> None:
    """Real pressure: this process takes 2.5 GiB, the floor sits 1 GiB under MemAvailable."""
    client = await make_client(pool={"enabled": False})
    engine = only_engine(client.app).engine
    profile = BoxProfile.of(Settings().defaults, tty=True, tmp_exec=False, runtime="runc")
    floor_mb = host_available_bytes() // MIB - 1024
    settings = PoolSettings(per_profile=2, min_host_available_mb=floor_mb)
    pool = WarmPool(engine, settings, profiles=[profile], memory_budget_bytes=2**40)
    filler = asyncio.create_task(pool.keep_filled())
    try:
        await eventually(lambda: pool.size == 2, timeout_s=30, what="two idle boxes")
        filled = pool.idle_box_ids()
        hog = b"\x01" * (2560 * MIB)  # written, so every page is really taken
        await eventually(lambda: pool.size == 0, timeout_s=15, what="the pool emptied")
        assert pool.pressure is MemoryPressure.SHED
        await asyncio.sleep(1)
        assert pool.size == 0, "no box is added while memory is short"
        del hog
        for box_id in filled:
            assert await asyncio.to_thread(run_remains, box_id) == ([], False)
    finally:
        filler.cancel()
        await asyncio.gather(filler, return_exceptions=True)
        await pool.close()
