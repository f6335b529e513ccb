"""Nothing lingers: disconnects, shutdowns, crashes and the reaper."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.helpers import eventually, only_engine
from tests.integration.conftest import MakeClient
from tests.integration.rest import metric, metrics
from tests.integration.server_process import server_process
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID, leftovers, project_containers, run_remains


async def wait_until_gone(what: str, check: Callable[[], bool], timeout_s: float) -> float:
    """Seconds until `check()` says gone; fails after `timeout_s`."""
    began = time.monotonic()
    await eventually(lambda: asyncio.to_thread(check), timeout_s=timeout_s, what=f"{what} gone")
    return time.monotonic() - began


async def test_client_disconnect_removes_the_container_within_two_seconds(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    async with TermClient.connect(client) as term:
        started = await term.run("bash", "echo running; sleep 100")
        await term.expect(b"running")
        containers, staged = await asyncio.to_thread(run_remains, started["run_id"])
        assert len(containers) == 1 and staged
    elapsed = await wait_until_gone(
        "the run's container", lambda: run_remains(started["run_id"]) == ([], False), 2.0
    )
    assert elapsed < 2.0


async def test_server_shutdown_reports_and_removes_every_run() -> None:
    with server_process() as server:
        terms = []
        async with contextlib.AsyncExitStack() as stack:
            for _ in range(3):
                term = await stack.enter_async_context(TermClient.connect_url(server.ws_url))
                started = await term.run("bash", "echo running; sleep 100")
                await term.expect(b"running")
                assert len((await asyncio.to_thread(run_remains, started["run_id"]))[0]) == 1
                terms.append(term)
            server.terminate()
            for term in terms:
                exit_message = await term.wait_exit(timeout=20)
                assert exit_message["status"] == "error"
                assert "shutting down" in exit_message["message"]
                closing = await term.ws.receive(timeout=20)
                assert closing.data == 1001
            assert await asyncio.to_thread(server.process.wait, 30) == 0
        assert await asyncio.to_thread(leftovers) == ([], [])


async def test_restart_after_sigkill_reaps_what_the_crash_left() -> None:
    server_id = f"{TEST_SERVER_ID}-crash"  # the restarted server must be the same server
    # No warm pool: a refill cut by the SIGKILL could leave a container
    # unrecorded by the suite's spec recorder.
    with server_process(server_id=server_id, CE_POOL__ENABLED="false") as server:
        async with TermClient.connect_url(server.ws_url) as term:
            started = await term.run("bash", "echo running; sleep 100")
            await term.expect(b"running")
            server.crash()
    containers, staged = await asyncio.to_thread(run_remains, started["run_id"])
    assert len(containers) == 1 and staged, "the crash should leave its run behind"
    crashed_containers, crashed_folders = await asyncio.to_thread(leftovers, caches=False)

    def crash_cleaned() -> bool:
        # The compile cache's folder is the restarted server's own again.
        containers, folders = leftovers(caches=False)
        return not set(crashed_containers) & set(containers) and not set(crashed_folders) & set(
            folders
        )

    with server_process(server_id=server_id):
        await wait_until_gone("what the crash left", crash_cleaned, 10.0)


async def test_reaper_removes_orphans_and_spares_live_boxes(make_client: MakeClient) -> None:
    orphan = subprocess.run(
        ["docker", "create", "--label", f"ce.owner={TEST_SERVER_ID}", "--label", "ce.run=orphan", "--network", "none",
         "code-executor-runtime", "sleep", "100"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    orphan_folders = [Path(f"/tmp/ce-{TEST_SERVER_ID}-{uuid.uuid4().hex}") for _ in range(2)]
    for folder in orphan_folders:
        folder.mkdir()
    client = await make_client(
        pool={"enabled": True, "per_profile": 1, "max_total": 1}, sandbox={"reap_interval_s": 1}
    )

    async def orphans_gone() -> bool:
        containers = await asyncio.to_thread(project_containers)
        return orphan not in containers and not any(f.exists() for f in orphan_folders)

    async def removals_counted() -> bool:
        # One container and two folders, whether in one pass or two.
        return metric(await metrics(client), "ce_reaper_removals_total") >= 3

    await eventually(orphans_gone, timeout_s=10, what="the reaper removed the orphans")
    await eventually(removals_counted, timeout_s=10, what="the reaper's removals counted")
    pool = only_engine(client.app).pool
    await eventually(lambda: pool.size >= 1, timeout_s=10, what="a warm box")
    warm = next(iter(pool.idle_box_ids()))
    await asyncio.sleep(2)  # at least one more periodic reap
    containers, staged = await asyncio.to_thread(run_remains, warm)
    assert len(containers) == 1 and staged, "a live warm box must survive the reaper"


async def test_the_reaper_spares_the_folders_of_a_server_whose_id_extends_its_own(
    make_client: MakeClient,
) -> None:
    """Server `X` must not take the live folders of server `X-other` for its own leftovers."""
    leftover = Path(f"/tmp/ce-{TEST_SERVER_ID}-{uuid.uuid4().hex}")
    others = Path(f"/tmp/ce-{TEST_SERVER_ID}-other-{uuid.uuid4().hex}")
    try:
        leftover.mkdir()
        others.mkdir()
        client = await make_client(pool={"enabled": False})
        await only_engine(client.app).engine.reap()
        assert not leftover.exists(), "the reaper should remove its own server's leftover"
        assert others.exists(), "the reaper removed a folder of another server"
    finally:
        shutil.rmtree(others, ignore_errors=True)
        shutil.rmtree(leftover, ignore_errors=True)
