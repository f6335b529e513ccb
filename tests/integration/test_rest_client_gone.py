"""A REST client that closes its connection loses its run, like a WebSocket client.

aiohttp does not cancel a handler when its client leaves (not by default, and
not under `web.run_app`), so `execute` must notice by itself: these tests
close a raw socket mid-run and time how long the container outlives it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess

import pytest
from aiohttp import web

from ce_ws.api.appkeys import RUNNER
from ce_ws.logs import EVENTS_LOGGER
from ce_ws.runs.run import RunState
from tests.helpers import eventually
from tests.integration.conftest import MakeClient
from tests.integration.raw_http import RawRequest
from tests.integration.rest import metric, metrics
from tests.integration.server_process import server_process
from tests.integration.test_ws_cleanup import wait_until_gone
from tests.leftovers import OWNER_LABEL, TEST_SERVER_ID, run_remains

ACCESS_LOGGER = "aiohttp.access"
#: SECURITY.md: every container is gone within 5 s of its client leaving.
CLEANUP_S = 5.0
#: Would run for 90 s if nobody ended it.
LONG_RUN = {
    "language": "bash",
    "code": "echo rest-client-gone; exec sleep 100",
    "limits": {"wall_ms": 90_000},
}


async def _running_run_id(app: web.Application, timeout_s: float = 30.0) -> str:
    """The id of the one REST run in flight, once its program runs."""
    found: list[str] = []

    def running() -> bool:
        live = app[RUNNER].live_runs()
        found[:] = [run.run_id for run in live if run.state is RunState.RUNNING]
        return bool(found)

    await eventually(running, timeout_s=timeout_s, what="the run's program started")
    return found[0]


def _containers_of(owner: str) -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label={OWNER_LABEL}={owner}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


async def test_a_client_that_leaves_loses_its_run_within_five_seconds(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    client = await make_client(pool={"enabled": False})
    request = await RawRequest.post_json(client.host, client.port, **LONG_RUN)
    run_id = await _running_run_id(client.app)
    containers, staged = await asyncio.to_thread(run_remains, run_id)
    assert len(containers) == 1 and staged
    await request.close()
    elapsed = await wait_until_gone(
        "the run's container", lambda: run_remains(run_id) == ([], False), CLEANUP_S
    )
    print(f"container gone {elapsed:.2f} s after the client closed")
    # Counted and logged as killed because the client went away, as on a WebSocket.
    ends = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]
    [end] = [e for e in ends if e["event"] == "run_end" and e["run_id"] == run_id]
    assert (end["status"], end["message"], end["via"]) == ("killed", "the client went away", "rest")
    samples = await metrics(client)
    assert metric(samples, "ce_runs_total", language="bash", status="killed") == 1


async def test_a_client_that_leaves_during_its_body_is_no_error_in_the_log(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client = await make_client()
    request = await RawRequest.post(client.host, client.port, b"{", content_length=100_000)
    await asyncio.sleep(0.2)  # the server is reading the body
    await request.close()

    def answered() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]

    await eventually(lambda: bool(answered()), what="the server finishing the request")
    assert '"POST /api/v1/execute HTTP/1.1" 499' in answered()[0]
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []


async def test_the_run_app_server_also_ends_the_run_of_a_client_that_left() -> None:
    server_id = f"{TEST_SERVER_ID}-gone"
    with server_process(server_id=server_id, CE_POOL__ENABLED="false") as server:
        request = await RawRequest.post_json("127.0.0.1", server.port, **LONG_RUN)
        await eventually(
            lambda: asyncio.to_thread(_containers_of, server_id),
            timeout_s=30,
            what="the run's container started",
            every_s=0.1,
        )
        await asyncio.sleep(1)  # past the start: the program runs
        await request.close()
        elapsed = await wait_until_gone(
            "the run's container", lambda: not _containers_of(server_id), CLEANUP_S
        )
        print(f"container gone {elapsed:.2f} s after the client closed")
