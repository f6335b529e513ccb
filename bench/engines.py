"""9. Engines: churn and capacity with one Docker engine and with two, as a ratio.

The second engine is a real dockerd of its own (scripts/scratch-engine.sh:
its own socket, data root and exec root, the runtime image copied in),
started for this benchmark and stopped after it. The server runs with
`CE_SANDBOX__ENGINES` naming the main engine alone, then both. Churn: 16
clients run a Python hello world to its `exit` again and again, warm pool
off, so every run creates, starts and removes a container. Capacity: idle
interactive sessions opened (8 at a time), then keystroke round trips
probed over them. Both engines share this machine's cores: the ratio shows
what placement over two daemons costs or gains here, not what a second
host adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiodocker

from bench.churn import CLIENTS, Tally, churn_for, server_runner
from bench.client import Session
from bench.common import BenchContext, BenchResult
from bench.engine import owned
from bench.fleet import Fleet
from bench.progress import say
from bench.server import ROOT, bench_server, server_env
from bench.stats import Summary, Table, fmt, fmt_ratio, ratio

SCRATCH = "ce-bench-engine"
SCRATCH_URL = f"unix:///run/{SCRATCH}.sock"
MAIN_URL = "unix:///var/run/docker.sock"
SESSIONS = 120
QUICK_SESSIONS = 10
_SCRIPT = ROOT / "scripts" / "scratch-engine.sh"


@dataclass(frozen=True, slots=True)
class Shape:
    """What one server configuration measured."""

    engines: int
    churn: Tally
    open_seconds: float
    opened: int
    echo_ms: Summary
    placed: dict[str, int]


def _scratch_engine(action: str) -> None:
    subprocess.run(
        ["bash", str(_SCRIPT), action],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "CE_SCRATCH_ENGINE_NAME": SCRATCH},
    )


@contextlib.asynccontextmanager
async def _second_engine() -> AsyncIterator[aiodocker.Docker]:
    say("engines: starting a second dockerd (and copying the runtime image into it)")
    await asyncio.to_thread(_scratch_engine, "start")
    docker = aiodocker.Docker(url=SCRATCH_URL)
    try:
        yield docker
    finally:
        await docker.close()
        await asyncio.to_thread(_scratch_engine, "stop")


def _engines_env(count: int) -> str:
    engines = [{"name": "main", "url": MAIN_URL, "capacity": 1024}]
    if count == 2:
        engines.append({"name": "second", "url": SCRATCH_URL, "capacity": 1024})
    return json.dumps(engines)


async def _placed(ctx: BenchContext, url: str) -> dict[str, int]:
    """Runs placed per engine, from the server's own metrics."""
    async with ctx.http.get(f"{url}/metrics") as response:
        text = await response.text()
    placed = {}
    for line in text.splitlines():
        if line.startswith("ce_engine_placements_total{"):
            name = line.split('engine="', 1)[1].split('"', 1)[0]
            placed[name] = int(float(line.rsplit(" ", 1)[1]))
    return placed


async def _measure(ctx: BenchContext, count: int, second: aiodocker.Docker) -> Shape:
    server_id = f"ce-bench-engines-{count}"
    env = server_env(server_id, pool=False, CE_SANDBOX__ENGINES=_engines_env(count))
    seconds = 6.0 if ctx.quick else 30.0
    async with bench_server(env) as server:
        sessions = [await Session.open(ctx.http, server.ws_url) for _ in range(CLIENTS)]
        try:
            churn = await churn_for(
                f"{count} engine(s)", [server_runner(s) for s in sessions], seconds
            )
        finally:
            await asyncio.gather(*(session.close() for session in sessions))
        fleet = Fleet(ctx.http, server.ws_url)
        try:
            grown = await fleet.grow(QUICK_SESSIONS if ctx.quick else SESSIONS)
            echo = Summary.of(await fleet.probe(ctx.reps(300, 30)) or [float("nan")]).scaled(1000)
            placed = await _placed(ctx, server.url)
        finally:
            await fleet.close(lambda left: _settled(ctx, second, server_id, count, left))
    return Shape(count, churn, grown.seconds, grown.opened, echo, placed)


async def _settled(
    ctx: BenchContext, second: aiodocker.Docker, server_id: str, count: int, left: int
) -> None:
    """Wait (bounded) until the server's engines hold `left` sessions' containers."""
    owners = [(ctx.docker, f"{server_id}-main")]
    if count == 2:
        owners.append((second, f"{server_id}-second"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = sum([len(await owned(docker, owner)) for docker, owner in owners])
        if held <= left:
            return
        await asyncio.sleep(0.2)


def _row(shape: Shape, one: Shape) -> list[str]:
    latency = Summary.of(shape.churn.latencies or [float("nan")]).scaled(1000)
    return [
        str(shape.engines),
        fmt(shape.churn.per_second, 2),
        fmt_ratio(ratio(shape.churn.per_second, one.churn.per_second)),
        fmt(latency.median, 0),
        str(len(shape.churn.failures)),
        f"{shape.opened / shape.open_seconds:.1f}" if shape.open_seconds else "—",
        fmt_ratio(ratio(shape.opened / shape.open_seconds, one.opened / one.open_seconds)),
        fmt(shape.echo_ms.median, 1),
        fmt(shape.echo_ms.p99, 1),
        ", ".join(f"{name} {n}" for name, n in sorted(shape.placed.items())),
    ]


async def run(ctx: BenchContext) -> BenchResult:
    """The same churn and capacity runs through one engine, then two."""
    result = BenchResult(name="engines", title="Engines", what=__doc__.split("\n\n", 1)[1])
    async with _second_engine() as second:
        shapes = [await _measure(ctx, count, second) for count in (1, 2)]
        # The bench's own leftover check looks at the main engine; this is the second's.
        left_on_second = len(await owned(second, "ce-bench-engines-2-second"))
    one, two = shapes
    result.tables.append(
        Table(
            title="One engine and two: churn (pool off) and idle sessions",
            headers=[
                "engines",
                "runs/s",
                "÷ 1 engine",
                "latency p50 ms",
                "failed",
                "sessions opened/s",
                "÷ 1 engine",
                "echo p50 ms",
                "echo p99 ms",
                "runs placed",
            ],
            rows=[_row(shape, one) for shape in shapes],
            notes=(
                f"churn: {CLIENTS} clients, hello world to `exit`, warm pool off; sessions: "
                f"{SESSIONS} idle echo sessions opened 8 at a time, then keystroke probes.",
                "runs placed: the server's `ce_engine_placements_total` at the end (churn"
                " runs and sessions).",
            ),
        )
    )
    result.headline.append(
        f"engines: churn {two.churn.per_second:.2f} runs/s on two engines, "
        f"{fmt_ratio(ratio(two.churn.per_second, one.churn.per_second))} one engine's; "
        f"sessions opened "
        f"{fmt_ratio(ratio(two.opened / two.open_seconds, one.opened / one.open_seconds))}; "
        f"echo p99 {two.echo_ms.p99:.1f} ms against {one.echo_ms.p99:.1f} ms; "
        f"{left_on_second} containers left on the second engine"
    )
    result.data = {
        str(shape.engines): {
            "runs_per_second": shape.churn.per_second,
            "failures": shape.churn.failures[:20],
            "open_seconds": shape.open_seconds,
            "opened": shape.opened,
            "echo_p50_ms": shape.echo_ms.median,
            "echo_p99_ms": shape.echo_ms.p99,
            "placed": shape.placed,
        }
        for shape in shapes
    }
    result.data["left_on_second_engine"] = left_on_second
    return result
