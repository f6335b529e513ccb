"""Slow REST clients: a deadline on the body.

A request whose body trickles in holds a connection (a file descriptor) for
as long as the server waits; these tests send a head announcing 100 000
bytes and then one, from raw sockets.
"""

from __future__ import annotations

import time

from tests.integration.conftest import MakeClient
from tests.integration.raw_http import RawRequest

ANNOUNCED = 100_000


async def test_a_body_that_does_not_arrive_in_time_is_a_408(make_client: MakeClient) -> None:
    client = await make_client(body_timeout_s=1)
    began = time.monotonic()
    request = await RawRequest.post(client.host, client.port, b"{", content_length=ANNOUNCED)
    status, body = await request.response(timeout=5)
    waited = time.monotonic() - began
    print(f"408 after {waited:.2f} s")
    assert status == 408, body
    assert body["error"]["code"] == "bad_message" and "1 s" in body["error"]["message"]
    assert 1 <= waited < 2
    await request.close()
