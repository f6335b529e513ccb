"""8. Network: a run under a policy against the same run without network.

Time to first output (`run` sent to the first output byte over the
WebSocket) of a Python `print("hi")`, with and without `network`, warm (the
pool keeps a box per policy) and cold (pool off: a networked cold start also
makes the run's network and connects the proxy, which is what attaching on
claim would cost). Then a 10 MiB download inside one networked run: from the
bench's own HTTP server through the Squid proxy, against the same 10 MiB from
a server on the run's own loopback (no proxy), timed by the program itself.
The destination is a container on an internal network of the bench's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from bench.common import BenchContext, BenchResult
from bench.progress import say
from bench.server import bench_server, server_env
from bench.stats import SUMMARY_HEADERS, Summary, Table, fmt_ratio, ratio, summary_cells

SERVER_ID = "ce-bench-network"
UPSTREAM = "ce-bench-upstream"
CODE = 'print("hi")\n'
BIG = 10 * 1024 * 1024
_SERVE_BIG = (
    "import http.server as h\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', str(10*1024*1024));"
    " self.end_headers()\n"
    "        [self.wfile.write(bytes(65536)) for _ in range(160)]\n"
    "h.ThreadingHTTPServer(('0.0.0.0', 8000), H).serve_forever()\n"
)
# Downloads 10 MiB through the proxy, then from a loopback server; prints both in ms.
_DOWNLOAD = (
    "import json, subprocess, sys, time, urllib.request\n"
    "def get(url, opener):\n"
    "    began = time.perf_counter(); body = opener.open(url, timeout=60).read()\n"
    "    assert len(body) == 10*1024*1024; return (time.perf_counter() - began) * 1000\n"
    "local = subprocess.Popen([sys.executable, '-c', sys.argv[1]])\n"
    "import socket\n"
    "for _ in range(200):  # until the loopback server listens (bounded: 10 s)\n"
    "    try: socket.create_connection(('127.0.0.1', 8000), timeout=1).close(); break\n"
    "    except OSError: time.sleep(0.05)\n"
    "proxied = get('http://big.bench:8000/', urllib.request.build_opener())\n"
    "direct = get('http://127.0.0.1:8000/', urllib.request.build_opener("
    "urllib.request.ProxyHandler({})))\n"
    "local.kill(); print(json.dumps([proxied, direct]))\n"
)


def _docker(*argv: str) -> None:
    subprocess.run(["docker", *argv], check=True, capture_output=True)


@asynccontextmanager
async def _upstream() -> AsyncIterator[str]:
    image = os.environ.get("CE_SANDBOX__IMAGE", "code-executor-runtime")
    await asyncio.to_thread(_docker, "network", "create", "--internal", UPSTREAM)
    try:
        await asyncio.to_thread(
            _docker, "run", "-d", "--name", UPSTREAM, "--network", UPSTREAM,
            "--network-alias", "big.bench", "--read-only", "--user", "65534:65534",
            image, "python3", "-c", _SERVE_BIG,
        )  # fmt: skip
        yield UPSTREAM
    finally:
        await asyncio.to_thread(subprocess.run, ["docker", "rm", "-f", UPSTREAM], check=False)
        await asyncio.to_thread(subprocess.run, ["docker", "network", "rm", UPSTREAM], check=False)


def _env(pool: bool) -> dict[str, str]:
    network = {"policies": {"bench": ["big.bench:8000"]}, "egress_network": UPSTREAM}
    return server_env(SERVER_ID, pool=pool, CE_NETWORK=json.dumps(network))


async def _ttfo(http: aiohttp.ClientSession, ws_url: str, network: str | None) -> float:
    async with http.ws_connect(ws_url) as ws:
        await ws.receive_json()  # hello
        run = {"type": "run", "language": "python", "code": CODE}
        if network:
            run["network"] = network
        began = time.perf_counter()
        await ws.send_json(run)
        while True:
            frame = await ws.receive(timeout=60)
            if frame.type == aiohttp.WSMsgType.BINARY:
                first = time.perf_counter() - began
                break
            if frame.type != aiohttp.WSMsgType.TEXT or json.loads(frame.data)["type"] in (
                "error",
                "exit",
            ):
                raise RuntimeError(f"no output: {frame.data!r}")
        while True:  # to the run's end, so the next sample starts on a settled engine
            message = await ws.receive(timeout=60)
            if message.type != aiohttp.WSMsgType.BINARY and (
                message.type != aiohttp.WSMsgType.TEXT or json.loads(message.data)["type"] == "exit"
            ):
                break
    return first


async def _download(http: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    body = {"language": "python", "code": _DOWNLOAD, "args": [_SERVE_BIG], "network": "bench"}
    async with http.post(f"{url}/api/v1/execute", json=body) as response:
        answer = await response.json()
    if answer.get("status") != "exited" or answer.get("exit_code") != 0:
        raise RuntimeError(f"download run failed: {str(answer)[:300]}")
    proxied, direct = json.loads(answer["stdout"])
    return proxied, direct


async def run(ctx: BenchContext) -> BenchResult:
    """TTFO with and without a policy, warm and cold; a 10 MiB download through Squid."""
    result = BenchResult(
        name="network",
        title="Network by allowlist",
        what=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
    )
    reps = ctx.reps(10, 3)
    ttfo: dict[str, list[float]] = {}
    downloads: list[tuple[float, float]] = []
    async with _upstream():
        for pool in (True, False):
            async with bench_server(_env(pool)) as server:
                await asyncio.sleep(8 if pool else 1)  # the pool fills (a box per policy too)
                for rep in range(reps):
                    for network in (None, "bench") if rep % 2 == 0 else ("bench", None):
                        key = (
                            f"{'warm' if pool else 'cold'}, {'policy' if network else 'no network'}"
                        )
                        ttfo.setdefault(key, []).append(
                            await _ttfo(ctx.http, server.ws_url, network)
                        )
                        # Long enough for the pool to refill the box just claimed.
                        await asyncio.sleep(2.0 if pool else 0.2)
                if pool:
                    for _ in range(ctx.reps(5, 2)):
                        downloads.append(await _download(ctx.http, server.url))
                say(f"network: {'warm' if pool else 'cold'} done")
    summaries = {key: Summary.of(samples).scaled(1000) for key, samples in ttfo.items()}
    rows = []
    for key, summary in summaries.items():
        base = summaries[key.replace("policy", "no network")]
        rows.append([key, *summary_cells(summary), fmt_ratio(ratio(summary.median, base.median))])
    result.tables.append(
        Table("Time to first output (ms)", ["run", *SUMMARY_HEADERS, "vs no network"], rows)
    )
    proxied = Summary.of([p for p, _ in downloads])
    direct = Summary.of([d for _, d in downloads])
    result.tables.append(
        Table(
            "10 MiB download inside a networked run (ms)",
            ["path", *SUMMARY_HEADERS, "vs loopback"],
            [
                [
                    "through Squid",
                    *summary_cells(proxied),
                    fmt_ratio(ratio(proxied.median, direct.median)),
                ],
                ["run's own loopback", *summary_cells(direct), "1.00x"],
            ],
        )
    )
    warm, cold = summaries["warm, policy"], summaries["cold, policy"]
    result.headline.append(
        f"TTFO with a policy: warm {warm.median:.0f} ms, cold {cold.median:.0f} ms;"
        f" 10 MiB through Squid {proxied.median:.0f} ms"
        f" ({BIG / 1024 / 1024 / (proxied.median / 1000):.0f} MiB/s)"
    )
    result.data = {"ttfo_ms": {k: [round(v * 1000, 2) for v in s] for k, s in ttfo.items()},
                   "download_ms": downloads}  # fmt: skip
    return result
