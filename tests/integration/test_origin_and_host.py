"""Which browsers may drive the server: Host and Origin against its configuration.

A page on another site must not run code here, neither through a blind
`no-cors` POST nor through a WebSocket after DNS rebinding (where the browser
sends the attacker's name as both Host and Origin). The server's own origins
come from its settings and its listening socket, never from the request.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.rest import EXECUTE, metric, metrics

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
#: A body that passes every browser rule and then is refused without a container.
NO_RUN = {"language": "cobol", "code": "x"}


async def error_of(response: ClientResponse) -> dict[str, Any]:
    """The `error` object of a refusal in the contract's shape."""
    body: dict[str, Any] = await response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


async def upgrade(
    client: TestClient[Any, Any], origin: str | None, host: str | None = None
) -> ClientResponse:
    headers = dict(UPGRADE)
    if origin is not None:
        headers["Origin"] = origin
    if host is not None:
        headers["Host"] = host
    response = await client.get("/api/v1/ws", headers=headers)
    if response.status != 101:
        await response.read()  # the refusal's body, for `error_of`
    response.close()
    return response


async def post_execute(
    client: TestClient[Any, Any], headers: dict[str, str], body: dict[str, Any] = NO_RUN
) -> ClientResponse:
    return await client.post(
        EXECUTE, data=json.dumps(body), headers={"Content-Type": "application/json", **headers}
    )


async def test_a_cross_site_text_plain_post_is_refused_and_runs_nothing(
    make_client: MakeClient,
) -> None:
    """What a page elsewhere can send blind, with `fetch(url, {mode: 'no-cors'})`."""
    client = await make_client(pool={"enabled": False})
    response = await client.post(
        EXECUTE,
        data=json.dumps({"language": "bash", "code": "echo pwned"}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example"},
    )
    assert response.status == 403
    assert (await error_of(response))["code"] == "origin_not_allowed"
    samples = await metrics(client)
    assert metric(samples, "ce_container_start_seconds_count") == 0
    assert not [key for key in samples if key[0] == "ce_runs_total"]


async def test_execute_without_a_json_content_type_is_a_415(client: TestClient[Any, Any]) -> None:
    body = json.dumps(NO_RUN)
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/octet-stream"):  # fmt: skip
        response = await client.post(EXECUTE, data=body, headers={"Content-Type": content_type})
        assert response.status == 415, content_type
        assert (await error_of(response))["code"] == "unsupported_media_type"
    response = await client.post(EXECUTE, data=body, skip_auto_headers=["Content-Type"])
    assert response.status == 415
    # Media types are case-insensitive and may carry a charset.
    response = await post_execute(client, {"Content-Type": "Application/JSON; charset=utf-8"})
    assert (await error_of(response))["code"] == "unknown_language"


async def test_execute_from_a_foreign_origin_is_a_403(client: TestClient[Any, Any]) -> None:
    port = client.port
    for origin in ("https://evil.example", "null", f"https://127.0.0.1:{port}",
                   f"http://evil.example:{port}", f"chrome-extension://127.0.0.1:{port}"):  # fmt: skip
        response = await post_execute(client, {"Origin": origin})
        assert response.status == 403, origin
        assert (await error_of(response))["code"] == "origin_not_allowed"


async def test_dns_rebinding_host_and_origin_naming_another_site_are_refused(
    client: TestClient[Any, Any],
) -> None:
    rebound = f"evil.example:{client.port}"
    response = await upgrade(client, f"http://{rebound}", host=rebound)
    assert response.status == 403
    assert (await error_of(response))["code"] == "host_not_allowed"


async def test_origin_with_the_servers_address_but_another_scheme_is_refused(
    client: TestClient[Any, Any],
) -> None:
    """The server speaks plain http: https:// or an extension's scheme is someone else."""
    port = client.port
    for origin in (f"https://127.0.0.1:{port}", f"chrome-extension://127.0.0.1:{port}",
                   f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"):  # fmt: skip
        response = await upgrade(client, origin)
        assert response.status == 403, origin
        assert (await error_of(response))["code"] == "origin_not_allowed"


async def test_a_host_header_naming_another_site_is_refused_on_every_route(
    client: TestClient[Any, Any],
) -> None:
    bogus = {"Host": f"evil.example:{client.port}"}
    for path in ("/", "/static/index.html", "/healthz", "/api/v1/languages"):
        response = await client.get(path, headers=bogus)
        assert response.status == 403, path
        assert (await error_of(response))["code"] == "host_not_allowed"
    response = await post_execute(client, bogus)
    assert response.status == 403
    assert (await error_of(response))["code"] == "host_not_allowed"
    for host in ("127.0.0.1.evil.example", "evil@127.0.0.1", "127.0.0.1:notaport", "[zz"):
        response = await client.get("/", headers={"Host": host})
        assert response.status == 403, host


async def test_the_servers_own_origins_and_clients_without_origin_get_in(
    client: TestClient[Any, Any],
) -> None:
    port = client.port
    for origin, host in ((f"http://127.0.0.1:{port}", None), (f"http://localhost:{port}", None),
                         (f"http://localhost:{port}", f"localhost:{port}"),
                         (f"http://[::1]:{port}", f"[::1]:{port}"), (None, None)):  # fmt: skip
        assert (await upgrade(client, origin, host)).status == 101, origin
        headers = {"Origin": origin} if origin else {}
        response = await post_execute(client, {**headers, **({"Host": host} if host else {})})
        assert (await error_of(response))["code"] == "unknown_language", origin
    page = await client.get("/", headers={"Host": f"localhost:{port}"})
    assert page.status == 200


async def test_configured_allowed_origins_still_get_in(make_client: MakeClient) -> None:
    client = await make_client(allowed_origins=["https://playground.example"])
    assert (await upgrade(client, "https://playground.example")).status == 101
    response = await post_execute(client, {"Origin": "https://playground.example"})
    assert (await error_of(response))["code"] == "unknown_language"
    assert (await upgrade(client, "https://playground.example.evil")).status == 403


async def test_the_public_url_behind_a_proxy_is_the_servers_own(make_client: MakeClient) -> None:
    """A TLS proxy forwards `Host: ce.example.org` and the page's https origin."""
    client = await make_client(public_url="https://ce.example.org")
    proxied = {"Host": "ce.example.org", "Origin": "https://ce.example.org"}
    assert (await upgrade(client, proxied["Origin"], proxied["Host"])).status == 101
    response = await post_execute(client, proxied)
    assert (await error_of(response))["code"] == "unknown_language"
    assert (await client.get("/", headers={"Host": "ce.example.org"})).status == 200
    # Its scheme counts: the proxy serves https only.
    assert (await upgrade(client, "http://ce.example.org", "ce.example.org")).status == 403


async def test_bound_to_every_address_only_configured_host_names_are_served(
    make_client: MakeClient,
) -> None:
    client = await make_client(host="0.0.0.0", allowed_hosts=["box.lan"])
    port = client.port
    for host, status in ((f"box.lan:{port}", 200), (f"BOX.LAN:{port}", 200),
                         (f"localhost:{port}", 200), (f"192.0.2.1:{port}", 403),
                         (f"0.0.0.0:{port}", 403)):  # fmt: skip
        assert (await client.get("/", headers={"Host": host})).status == status, host
    assert (await upgrade(client, f"http://box.lan:{port}", f"box.lan:{port}")).status == 101
    assert (await upgrade(client, f"https://box.lan:{port}", f"box.lan:{port}")).status == 403
