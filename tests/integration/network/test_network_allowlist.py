"""A run under a policy reaches exactly the allowlisted destinations, through Squid.

Every destination is the suite's own (`conftest.upstream`), on a network only
the proxy joins; each probe is a real program in a real container.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.network.conftest import PAGE, MakeClient, Upstream
from tests.integration.rest import execute
from tests.integration.terminal import TermClient

# Fetches each URL given as an argument through the proxy variables; one JSON line per URL.
FETCH = """
import json, os, ssl, sys, urllib.request
context = ssl.create_default_context(cafile="ca.pem")
proxy = os.environ.get("HTTP_PROXY", "http://none").split("//")[1]
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url.replace("PROXY", proxy), timeout=10, context=context) as answer:
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
        "http://PROXY/squid-internal-mgr/info",
        "http://PROXY/squid-internal-mgr/menu",
    )
    for url, (verdict, message) in fetched.items():
        assert verdict == "refused", (url, message)
        assert "403" in message, (url, message)


# Every way around the proxy a program might try; each prints [probe, "reached" | error].
BYPASS = r"""
import json, os, socket, sys
from concurrent.futures import ThreadPoolExecutor
target_ip, other_run_ip = sys.argv[1], sys.argv[2]
proxy_ip = os.environ["HTTP_PROXY"].split("//")[1].split(":")[0]
gateway = proxy_ip.rsplit(".", 1)[0] + "." + str(int(proxy_ip.rsplit(".", 1)[1]) - 1)

def tcp(host, port, family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect((host, port))
    return "reached"

def udp(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(b"ping", (host, port))
        s.recvfrom(100)
    return "reached"

def dns(name):
    return "resolved " + socket.gethostbyname(name)

def raw_dns(server):
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07allowed\x04test\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(query, (server, 53))
        answer = s.recvfrom(512)[0]
    return "answered rcode %d ancount %d" % (answer[3] & 15, answer[7])

def ipv6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(("fe80::1%eth0", 80))
    return "reached"

probes = {
    "direct tcp to the destination": lambda: tcp(target_ip, 8000),
    "udp to the destination": lambda: udp(target_ip, 8000),
    "dns of an allowed name": lambda: dns("allowed.test"),
    "dns exfiltration lookup": lambda: dns("c2VjcmV0LWRhdGE.allowed.test"),
    "dns straight to the engine resolver": lambda: raw_dns("127.0.0.11"),
    "dns to the destination": lambda: raw_dns(target_ip),
    "ipv6": ipv6,
    "cloud metadata": lambda: tcp("169.254.169.254", 80),
    "bridge gateway": lambda: tcp(gateway, 80),
    "the host": lambda: tcp("192.0.2.2", 22),
    "the host's loopback name": lambda: tcp("host.docker.internal", 80),
    "another run": lambda: tcp(other_run_ip, 8000),
    "the proxy's other ports": lambda: tcp(proxy_ip, 3129),
}

def attempt(probe):
    try:
        return probe()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)[:120]

# All at once: most probes wait out their timeout, which one after another took 40 s.
with ThreadPoolExecutor(len(probes)) as pool:
    for name, outcome in zip(probes, pool.map(attempt, probes.values())):
        print(json.dumps([name, outcome]))
"""

# Listens on TCP 8000 until killed: the "other run" the probes try to reach.
LISTENER = """
import socket, time
server = socket.socket()
server.bind(("0.0.0.0", 8000))
server.listen()
print("listening", flush=True)
time.sleep(30)
"""


def _container_ip(run_label: str) -> str:
    found = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=ce.run={run_label}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(found) == 1, found
    return subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", found[0]],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


async def test_every_way_around_the_proxy_is_closed(
    make_networked: MakeClient, upstream: Upstream
) -> None:
    client = await make_networked()
    async with TermClient.connect(client) as other:
        started = await other.run("python", LISTENER, network="web")
        await other.expect(b"listening")
        other_ip = await asyncio.to_thread(_container_ip, started["run_id"])
        result = await execute(
            client, language="python", network="web", code=BYPASS, args=[upstream.ip, other_ip]
        )
        # Leaving the socket ends the listener's run.
    outcomes = dict(json.loads(line) for line in result["stdout"].splitlines())
    assert len(outcomes) == 13, result
    reached = {
        probe: outcome
        for probe, outcome in outcomes.items()
        if outcome.startswith(("reached", "resolved", "answered rcode 0"))
    }
    assert reached == {}, outcomes
