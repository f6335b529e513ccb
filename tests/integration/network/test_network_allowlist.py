"""A run under a policy reaches exactly the allowlisted destinations, through Squid.

Every destination is the suite's own (`conftest.upstream`), on a network only
the proxy joins; each probe is a real program in a real container.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.network.conftest import PAGE, MakeClient, Upstream
from tests.integration.rest import execute

# Fetches each URL given as an argument through the proxy variables; one JSON line per URL.
FETCH = """
import json, ssl, sys, urllib.request
context = ssl.create_default_context(cafile="ca.pem")
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            print(json.dumps([url, answer.status, answer.read(100).decode()]))
    except Exception as exc:
        print(json.dumps([url, "refused", str(exc)[:200]]))
"""


def _fetched(stdout: str) -> dict[str, list[Any]]:
    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("[")]
    return {row[0]: row[1:] for row in rows}


async def fetch(
    client: TestClient[Any, Any], upstream: Upstream, *urls: str, network: str = "web"
) -> dict[str, list[Any]]:
    result = await execute(
        client,
        language="python",
        network=network,
        files=[
            {"name": "main.py", "content": FETCH},
            {"name": "ca.pem", "content": upstream.ca_pem},
        ],
        args=list(urls),
    )
    assert result["status"] == "exited", result
    return _fetched(result["stdout"])


async def test_allowed_hosts_answer_over_http_and_https(
    make_networked: MakeClient, upstream: Upstream
) -> None:
    client = await make_networked()
    fetched = await fetch(
        client,
        upstream,
        "http://allowed.test:8000/",
        "https://allowed.test:8443/",
        "http://a.wild.test:8000/",
    )
    assert fetched == {
        "http://allowed.test:8000/": [200, PAGE],
        "https://allowed.test:8443/": [200, PAGE],
        "http://a.wild.test:8000/": [200, PAGE],
    }


async def test_hosts_and_ports_off_the_list_are_refused_by_the_proxy(
    make_networked: MakeClient, upstream: Upstream
) -> None:
    client = await make_networked()
    fetched = await fetch(
        client,
        upstream,
        "http://other.test:8000/",
        "http://allowed.test:8001/",
        "https://other.test:8443/",
        "http://wild.test:8000/",
        f"http://{upstream.ip}:8000/",
        "http://169.254.169.254/latest/meta-data/",
    )
    for url, (verdict, message) in fetched.items():
        assert verdict == "refused", (url, message)
        assert "403" in message, (url, message)
