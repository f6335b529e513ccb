"""Who may name which policy, what a run without one gets, pip, the audit trail."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ce_ws.logs import EVENTS_LOGGER
from tests.helpers import eventually
from tests.integration.network.conftest import PAGE, VIP_TOKEN, MakeClient, Upstream
from tests.integration.network.test_network_allowlist import fetch
from tests.integration.rest import execute, metric, metrics, refusal
from tests.integration.terminal import TermClient

INTERFACES = "import os; print(sorted(os.listdir('/sys/class/net')))"


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
async def test_a_run_without_a_policy_has_only_loopback(
    make_networked: MakeClient, runtime: str
) -> None:
    client = await make_networked(sandbox={"runtime": runtime})
    result = await execute(client, language="python", code=INTERFACES)
    assert result["stdout"] == "['lo']\n", result


async def test_a_run_under_a_policy_has_loopback_and_its_own_network(
    make_networked: MakeClient,
) -> None:
    client = await make_networked()
    result = await execute(client, language="python", code=INTERFACES, network="web")
    assert result["stdout"] == "['eth0', 'lo']\n", result


async def test_an_unknown_policy_is_a_bad_message_naming_the_field(
    make_networked: MakeClient,
) -> None:
    client = await make_networked()
    error = await refusal(client, 400, language="python", code="print(1)", network="nope")
    assert (error["code"], error["field"]) == ("bad_message", "network"), error
    assert "web" in error["message"], error


async def test_a_token_only_policy_needs_its_token(
    make_networked: MakeClient, upstream: Upstream
) -> None:
    client = await make_networked()
    error = await refusal(client, 401, language="python", code="print(1)", network="vip")
    assert (error["code"], error["field"]) == ("unauthorized", "network"), error
    fetched = await _fetch_with_token(client, upstream)
    assert fetched["http://allowed.test:8000/"][0] == 200, fetched


async def _fetch_with_token(client: TestClient[Any, Any], upstream: Upstream) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/execute",
        json={
            "language": "python",
            "network": "vip",
            "code": "import urllib.request as u; print(u.urlopen('http://allowed.test:8000/').status)",
        },
        headers={"Authorization": f"Bearer {VIP_TOKEN}"},
    )
    body = await response.json()
    assert response.status == 200, body
    return {"http://allowed.test:8000/": [int(body["stdout"])]}


async def test_hello_lists_the_policies_this_client_may_use(make_networked: MakeClient) -> None:
    client = await make_networked()
    async with TermClient.connect(client) as anonymous:
        assert anonymous.hello["network"] == ["web"]
    headers = {"Authorization": f"Bearer {VIP_TOKEN}"}
    async with TermClient.connect(client, headers=headers) as holder:
        assert holder.hello["network"] == ["web", "vip"]


async def test_the_websocket_refuses_a_token_only_policy_with_unauthorized(
    make_networked: MakeClient,
) -> None:
    client = await make_networked()
    async with TermClient.connect(client) as term:
        answer = await term.run("python", "print(1)", network="vip")
        assert (answer["type"], answer["code"], answer["field"]) == (
            "error",
            "unauthorized",
            "network",
        )


async def test_pip_installs_a_package_from_the_allowlisted_index(
    make_networked: MakeClient,
) -> None:
    client = await make_networked()
    result = await execute(
        client,
        language="bash",
        network="web",
        code=(
            "python3 -m pip install --quiet --disable-pip-version-check --no-cache-dir"
            " --target /tmp/site --index-url http://index.test:8000/simple/ --trusted-host index.test tinypkg"
            " && PYTHONPATH=/tmp/site python3 -c 'import tinypkg; print(tinypkg.HELLO)'"
        ),
    )
    assert result["stdout"].strip().endswith("tinypkg imported"), (
        result["stdout"],
        result["stderr"],
    )


async def test_each_connection_is_an_audit_line_and_a_counted_verdict(
    make_networked: MakeClient, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    client = await make_networked()
    await fetch(client, upstream, "http://allowed.test:8000/", "http://other.test:8000/")

    def proxy_lines() -> list[dict[str, Any]]:
        events = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]
        return [event for event in events if event["event"] == "proxy_connection"]

    await eventually(lambda: len(proxy_lines()) >= 2, timeout_s=10, what="two audit lines")
    lines = proxy_lines()
    run_ids = {line["run_id"] for line in lines}
    assert len(run_ids) == 1 and None not in run_ids, lines
    assert {(line["destination"], line["verdict"], line["policy"]) for line in lines} == {
        ("allowed.test:8000", "allowed", "web"),
        ("other.test:8000", "refused", "web"),
    }
    samples = await metrics(client)
    assert metric(samples, "ce_proxy_connections_total", policy="web", verdict="allowed") == 1
    assert metric(samples, "ce_proxy_connections_total", policy="web", verdict="refused") == 1


# What each language's usual client does with the proxy variables (docs/network.md).
CLIENTS = {
    "bash": "curl -sS --max-time 10 http://allowed.test:8000/",
    "ruby": ("require 'net/http'\nprint Net::HTTP.get(URI('http://allowed.test:8000/'))"),
    # Node 18's fetch ignores the proxy variables: a program sends the request to the proxy itself.
    "javascript": (
        "const http = require('http');\n"
        "const proxy = new URL(process.env.HTTP_PROXY);\n"
        "http.get({host: proxy.hostname, port: proxy.port, path: 'http://allowed.test:8000/',"
        " headers: {Host: 'allowed.test:8000'}}, (res) => res.pipe(process.stdout));"
    ),
}


@pytest.mark.parametrize("language", sorted(CLIENTS))
async def test_each_language_reaches_an_allowed_host_through_the_proxy(
    make_networked: MakeClient, language: str
) -> None:
    client = await make_networked()
    result = await execute(client, language=language, network="web", code=CLIENTS[language])
    assert result["stdout"] == PAGE, (result["stdout"], result["stderr"])


async def test_node_18_fetch_ignores_the_proxy_variables_and_fails(
    make_networked: MakeClient,
) -> None:
    client = await make_networked()
    code = (
        "fetch('http://allowed.test:8000/').then(() => console.log('reached'),"
        " (e) => console.log('failed', e.cause && e.cause.code))"
    )
    result = await execute(client, language="javascript", network="web", code=code)
    assert result["stdout"].startswith("failed"), result


async def test_a_policy_in_a_language_under_runsc_is_refused_before_any_container(
    make_networked: MakeClient,
) -> None:
    client = await make_networked(sandbox={"runtime": "runsc"})
    error = await refusal(client, 400, language="python", code="print(1)", network="web")
    assert (error["code"], error["field"]) == ("bad_message", "network"), error
    assert "gVisor" in error["message"], error
