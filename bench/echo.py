"""2. Keystroke echo: a byte sent to a program reading its terminal comes back.

The program puts its terminal in raw mode and writes back what it reads (a
REPL's loop). One byte at a time goes out on a WebSocket, through the server
and the engine's attach stream into the container's terminal, and back; the
probes go round-robin over 1, 50 and 200 open sessions that otherwise sit
idle. Baseline in the same run, at every level: the same program attached
straight through aiodocker (no server), probed between the server's probes.
"""

from __future__ import annotations

import asyncio
import time

from bench.baseline import EngineEcho
from bench.common import BenchContext, BenchResult
from bench.engine import idle_count, wait_settled
from bench.fleet import Fleet
from bench.programs import ECHO_PYTHON, python_program
from bench.progress import say
from bench.server import bench_server, server_env
from bench.stats import SUMMARY_HEADERS, Summary, Table, fmt_ratio, ratio, summary_cells

SERVER_ID = "ce-bench-echo"
_SETTLE_S = 1.0


async def _floor_probes(echo: EngineEcho, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        samples.append(await echo.round_trip(b"k"))
        await asyncio.sleep(0.005)
    return samples


async def run(ctx: BenchContext) -> BenchResult:
    """Echo round trips with 1, 50 and 200 idle sessions open."""
    result = BenchResult(name="echo", title="Keystroke echo", what=__doc__.split("\n\n", 1)[1])
    levels = (1, 10) if ctx.quick else (1, 50, 200)
    probes = ctx.reps(300, 40)
    rows: list[list[str]] = []
    began = time.monotonic()
    async with (
        bench_server(server_env(SERVER_ID, pool=True)) as server,
        EngineEcho.start(ctx.docker, python_program("echo", ECHO_PYTHON)) as floor,
    ):
        fleet = Fleet(ctx.http, server.ws_url)
        pool_size = await idle_count(ctx.docker, SERVER_ID)
        try:
            for level in levels:
                grown = await fleet.grow(level)
                if grown.failures:
                    raise RuntimeError(
                        f"{len(grown.failures)} sessions failed: {grown.failures[:3]}"
                    )
                await wait_settled(ctx.docker, {SERVER_ID: len(fleet) + pool_size}, timeout_s=10)
                await asyncio.sleep(_SETTLE_S)
                say(f"echo: probing {probes}x over {level} sessions")
                server_rtt = Summary.of(await fleet.probe(probes)).scaled(1000)
                floor_rtt = Summary.of(await _floor_probes(floor, probes)).scaled(1000)
                result.data[str(level)] = {
                    "server_ms": server_rtt.as_dict(),
                    "floor_ms": floor_rtt.as_dict(),
                }
                rows.append(
                    [
                        str(level),
                        "server",
                        *summary_cells(server_rtt, digits=2),
                        fmt_ratio(ratio(server_rtt.median, floor_rtt.median)),
                    ]
                )
                rows.append(
                    [str(level), "engine floor", *summary_cells(floor_rtt, digits=2), "1.00x"]
                )
                result.headline.append(
                    f"echo with {level} sessions: p50 {server_rtt.median:.1f} ms, "
                    f"p99 {server_rtt.p99:.1f} ms (engine floor p50 {floor_rtt.median:.1f} ms)"
                )
        finally:
            await fleet.close(
                lambda left: wait_settled(ctx.docker, {SERVER_ID: left + pool_size}, timeout_s=30)
            )
    result.tables.append(
        Table(
            title="Keystroke echo round trip (ms)",
            headers=["sessions", "path", *SUMMARY_HEADERS, "p50 ÷ floor"],
            rows=rows,
            notes=(
                "sessions: interactive runs open on the server, each a container whose program "
                "waits for a key; probes go one at a time, round-robin over all of them.",
                "engine floor: one more container with the same program, attached directly with "
                "aiodocker, probed right after the server at the same load.",
            ),
        )
    )
    result.seconds = time.monotonic() - began
    return result
