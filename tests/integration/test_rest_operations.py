"""Languages, the OpenAPI document, readiness, metrics and the event log of a live app."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ce_ws.logs import EVENTS_LOGGER
from ce_ws.openapi import openapi_document
from tests.helpers import eventually
from tests.integration.conftest import MakeClient
from tests.integration.rest import execute, metric, metrics, parse_metrics, refusal
from tests.integration.terminal import TermClient


async def test_languages_lists_every_language_with_its_details(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/api/v1/languages")
    assert response.status == 200
    by_name = {entry["name"]: entry for entry in await response.json()}
    assert set(by_name) == {"python", "javascript", "c", "cpp", "bash", "ruby"}
    assert by_name["cpp"] == {
        "name": "cpp",
        "version": "12.2.0",
        "aliases": ["c++", "cxx"],
        "compiled": True,
        "entry_file": "main.cpp",
    }


async def test_openapi_document_is_served_and_docs_page_loads_the_local_viewer(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document == openapi_document()
    page = await client.get("/docs")
    assert page.status == 200 and page.content_type == "text/html"
    text = await page.text()
    # The viewer's files come from this server only (the browser test sees it render).
    assert "/static/dist/docs/swagger-ui-bundle.js" in text and "/api/v1/openapi.json" in text
    assert "https://" not in text and "http://" not in text
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "wasm-unsafe-eval" not in policy


async def test_healthz_and_readyz_answer_when_all_is_well(make_client: MakeClient) -> None:
    client = await make_client(pool={"enabled": True})
    assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert {key: body[key] for key in ("ready", "active_runs", "queued_runs", "max_runs")} == {
        "ready": True,
        "active_runs": 0,
        "queued_runs": 0,
        "max_runs": 32,
    }
    assert body["pool_idle"] >= 0 and body["pool_hits"] == 0


async def test_readyz_is_503_when_the_engine_is_unreachable(make_client: MakeClient) -> None:
    client = await make_client(
        sandbox={"docker_url": "unix:///nonexistent.sock"}, pool={"enabled": False}
    )
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["ready"] is False and "nonexistent.sock" in body["reason"]
    assert (await client.get("/healthz")).status == 200


async def test_readyz_is_503_when_the_runtime_image_is_absent(make_client: MakeClient) -> None:
    client = await make_client(
        sandbox={"image": "code-executor-no-such-image"}, pool={"enabled": False}
    )
    response = await client.get("/readyz")
    assert response.status == 503
    assert "code-executor-no-such-image is absent" in (await response.json())["reason"]


async def test_readyz_is_503_when_the_runtime_image_is_out_of_date(make_client: MakeClient) -> None:
    stale = f"code-executor-runtime-stale-{os.getpid()}"
    recipe = b"FROM code-executor-runtime\nLABEL ce.recipe=stale\n"
    build = ["docker", "build", "--network=none", "-q", "-t", stale, "-"]
    await asyncio.to_thread(subprocess.run, build, input=recipe, capture_output=True, check=True)
    try:
        client = await make_client(sandbox={"image": stale}, pool={"enabled": False})
        response = await client.get("/readyz")
        assert response.status == 503
        assert f"{stale} is out of date" in (await response.json())["reason"]
    finally:
        remove = ["docker", "image", "rm", "-f", stale]
        await asyncio.to_thread(subprocess.run, remove, capture_output=True, check=False)


async def test_metrics_move_after_runs_and_refusals(client: TestClient[Any, Any]) -> None:
    await execute(client, language="python", code="print('hi')")
    await execute(client, language="bash", code="exit 3")
    await refusal(client, 400, language="cobol", code="x")
    async with TermClient.connect(client) as term:
        await term.run("fortran", "x")
        await term.run_to_exit("bash", "echo hi")
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        samples = parse_metrics(await response.text())
    assert metric(samples, "ce_runs_total", language="python", status="exited") == 1
    assert metric(samples, "ce_runs_total", language="bash", status="exited") == 2
    assert metric(samples, "ce_run_wall_seconds_count", language="bash") == 2
    assert metric(samples, "ce_run_first_output_seconds_count", language="python") == 1
    assert metric(samples, "ce_container_start_seconds_count") == 3
    assert metric(samples, "ce_runs_rejected_total", reason="unknown_language") == 2
    assert metric(samples, "ce_websocket_connections") == 1
    # The WebSocket run may still hold its slot while its container goes.
    assert metric(samples, "ce_active_runs") in {0, 1}
    assert ("ce_queued_runs", frozenset()) in samples
    assert ("ce_reaper_removals_total", frozenset()) in samples


async def test_event_log_has_one_line_per_run_end_and_refusal_without_code_or_output(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    code = "print('OUTPUT' + '-MARKER')  # CODE-MARKER"
    result = await execute(client, language="python", code=code, stdin="INPUT-MARKER\n")
    await refusal(client, 400, language="bash", code="true", limits={"wall_ms": 10**9})
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]
    run_end, refused = events
    assert run_end["event"] == "run_end" and run_end["run_id"] == result["run_id"]
    assert (run_end["language"], run_end["status"], run_end["via"]) == ("python", "exited", "rest")
    assert run_end["output_bytes"] == len("OUTPUT-MARKER\n")
    assert run_end["wall_ms"] == result["wall_ms"]
    assert refused["event"] == "refused" and refused["code"] == "limit_exceeded"
    assert run_end["client"] == refused["client"] != "127.0.0.1"
    for record in caplog.records:
        for marker in ("OUTPUT-MARKER", "CODE-MARKER", "INPUT-MARKER"):
            assert marker not in record.getMessage()


async def test_a_run_whose_client_left_is_counted_and_logged(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with TermClient.connect(client) as term:
        started = await term.run("bash", "echo running; sleep 100")
        await term.expect(b"running")

    def events() -> list[dict[str, Any]]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]

    await eventually(lambda: bool(events()), what="a run_end event after the client left")
    [run_end] = events()
    assert (run_end["run_id"], run_end["status"], run_end["via"]) == (
        started["run_id"],
        "killed",
        "ws",
    )
    assert run_end["message"] == "the client went away"
    samples = await metrics(client)
    assert metric(samples, "ce_runs_total", language="bash", status="killed") == 1
