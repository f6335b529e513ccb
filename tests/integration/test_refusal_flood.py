"""Refusals cannot flood the log: each quotes little of its input, and a burst is cut off.

A refusal costs the server a parse, a log line and an answer; these tests
send values of 100 000 characters and bursts of bad requests.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.raw_http import RawRequest
from tests.integration.rest import EXECUTE, refusal
from tests.integration.terminal import TermClient

HUGE = "9" * 100_000
#: Comfortably above a refusal's own words and the log's prefix, far below HUGE.
SHORT = 1_000


def _longest_log_line(caplog: pytest.LogCaptureFixture) -> int:
    return max(len(record.getMessage()) for record in caplog.records)


async def test_a_huge_value_is_quoted_short_in_the_rest_error_and_the_log(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    error = await refusal(client, 400, language="python", code="print()", version=HUGE)
    assert error["field"] == "version" and "9999…" in error["message"]
    assert len(error["message"]) < 200, error["message"][:300]
    assert any("not available" in record.getMessage() for record in caplog.records)
    assert _longest_log_line(caplog) < SHORT


async def test_a_huge_value_is_quoted_short_on_the_websocket_too(
    term: TermClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await term.ws.send_str(json.dumps({"type": HUGE}))  # pydantic quotes an unknown tag
    unknown_type = await term.next_message("error", timeout=5)
    refused = await term.run("python", "print()", version=HUGE)
    for error in (unknown_type, refused):
        assert error["code"] == "bad_message" and "…" in error["message"]
        assert len(error["message"]) < SHORT, error["message"][:300]
    assert _longest_log_line(caplog) < SHORT


async def test_a_burst_of_refused_requests_is_cut_off_before_bodies_are_read(
    make_client: MakeClient,
) -> None:
    client = await make_client(capacity={"refusals_per_minute": 5})
    json_header = {"Content-Type": "application/json"}
    for _ in range(5):
        response = await client.post(EXECUTE, data=b"{not json", headers=json_header)
        assert response.status == 400
    # The budget is spent: even a good request is refused now, and said why.
    error = await refusal(client, 429, language="bash", code="echo hi")
    assert error["code"] == "rate_limited" and "refused requests" in error["message"]
    # Refused before its body is read: no waiting for one that never comes.
    began = time.monotonic()
    request = await RawRequest.post(client.host, client.port, b"{", content_length=100_000)
    status, body = await request.response(timeout=2)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert time.monotonic() - began < 1
    await request.close()
