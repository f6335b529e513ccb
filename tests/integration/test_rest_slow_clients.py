"""Slow REST clients: a deadline on the body, a cap on one address's open requests.

A request whose body trickles in holds a connection (a file descriptor) for
as long as the server waits; these tests send a head announcing 100 000
bytes and then one, from raw sockets.
"""

from __future__ import annotations

import time

from ce_ws.api.appkeys import HTTP_REQUESTS
from tests.helpers import eventually
from tests.integration.conftest import MakeClient
from tests.integration.raw_http import RawRequest
from tests.integration.rest import execute

#: Another loopback address, so the server sees a second client.
SLOW_CLIENT = "127.0.0.2"
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


async def test_slow_requests_beyond_the_per_address_cap_are_refused_at_once(
    make_client: MakeClient,
) -> None:
    client = await make_client(body_timeout_s=3, capacity={"max_http_per_client": 3})
    host, port = client.host, client.port
    slow = [
        await RawRequest.post(host, port, b"{", content_length=ANNOUNCED, source=SLOW_CLIENT)
        for _ in range(3)
    ]
    await eventually(
        lambda: not client.app[HTTP_REQUESTS].has_room(f"addr:{SLOW_CLIENT}"),  # its identity
        what="the server holding the three slow requests",
    )
    began = time.monotonic()
    extra = await RawRequest.post(host, port, b"{", content_length=ANNOUNCED, source=SLOW_CLIENT)
    status, body = await extra.response(timeout=1)
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert await extra.closed_by_server(timeout=1), "a refused connection must not linger"
    print(f"refused and closed after {time.monotonic() - began:.2f} s")
    # Meanwhile other addresses are served...
    assert (await execute(client, language="bash", code="echo served"))["stdout"] == "served\n"
    # ...the slow ones get their answer at their deadline...
    for request in slow:
        status, body = await request.response(timeout=5)
        assert status == 408, body
        await request.close()
    await extra.close()
    # ...and then the address has its room back.
    again = await RawRequest.post_json(
        host, port, source=SLOW_CLIENT, language="bash", code="echo back"
    )
    status, body = await again.response(timeout=30)
    assert (status, body.get("stdout")) == (200, "back\n"), body
    await again.close()
