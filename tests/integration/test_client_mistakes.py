"""A client's mistake is a 4xx in the contract's error shape, logged in one line.

Each of these once cost a 500 and about 5 KB of ERROR traceback per 39-byte
request. Only a genuine bug is a 500, and then its body says `internal` and
nothing of the traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import yarl
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from ce_ws.api import ops
from tests.integration.conftest import MakeClient
from tests.integration.rest import EXECUTE


async def error_of(response: ClientResponse) -> dict[str, Any]:
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


def assert_no_error_logged(caplog: pytest.LogCaptureFixture) -> None:
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]


async def test_a_body_that_claims_gzip_but_is_not_is_a_400(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.post(
        EXECUTE,
        data=json.dumps({"language": "bash", "code": "true"}),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 400
    assert (await error_of(response))["code"] == "bad_message"
    assert_no_error_logged(caplog)
    assert (await client.get("/healthz")).status == 200  # on a fresh connection


async def test_an_origin_that_is_no_url_is_a_403(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad = {"Origin": "http://[zz"}
    for response in (await client.get("/api/v1/ws", headers=bad),
                     await client.post(EXECUTE, json={}, headers=bad)):  # fmt: skip
        assert response.status == 403, response.url
        assert (await error_of(response))["code"] == "origin_not_allowed"
    assert_no_error_logged(caplog)


async def test_a_static_name_too_long_for_the_filesystem_is_a_404(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    url = yarl.URL(f"http://{client.host}:{client.port}/static/{'a' * 300}", encoded=True)
    response = await client.session.get(url)
    assert response.status == 404
    assert (await error_of(response))["code"] == "not_found"
    assert_no_error_logged(caplog)


async def test_unknown_routes_and_methods_get_the_error_shape(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await client.get("/nowhere")
    assert response.status == 404 and (await error_of(response))["code"] == "not_found"
    response = await client.post("/healthz")
    assert response.status == 405 and response.headers["Allow"] == "GET,HEAD"
    assert (await error_of(response))["code"] == "method_not_allowed"
    response = await client.get("/api/v1/ws")  # not an upgrade
    assert response.status == 400 and (await error_of(response))["code"] == "bad_request"
    assert "X-Content-Type-Options" in response.headers
    assert_no_error_logged(caplog)


async def test_a_bug_is_a_500_internal_without_its_traceback(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(ops, "openapi_document", broken)
    client = await make_client()
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 500
    text = await response.text()
    assert "simulated" not in text and "Traceback" not in text
    assert (await error_of(response))["code"] == "internal"
    # The bug itself is logged with its traceback, once, for the operator.
    [logged] = [r for r in caplog.records if r.exc_info]
    assert "simulated bug" in str(logged.exc_info[1] if logged.exc_info else "")
