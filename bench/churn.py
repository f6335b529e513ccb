"""5. Churn: complete hello-world runs per second, 16 clients, for 60 s.

Each client keeps one WebSocket and runs a Python hello world to its `exit`,
again and again; the server runs with its warm pool off and on, one after
the other. Baseline in the same run: 16 loops of `docker run --rm` with the
same image, program and hardening flags. Afterwards every container and
staging folder of the run must be gone (the periodic reaper is off, so it
cannot tidy a leak away before it is counted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.baseline import baseline_config, docker_run, docker_run_argv, staged
from bench.client import Session
from bench.common import BenchContext, BenchResult
from bench.engine import idle_count, leaks_while_up, leftovers
from bench.programs import PYTHON_HELLO
from bench.progress import say
from bench.server import bench_server, server_env
from bench.stats import Summary, Table, fmt, fmt_ratio, ratio

CLIENTS = 16
COLD, WARM, DOCKER_RUN = "server, pool off", "server, pool on", "docker run --rm"
_REPORT_EVERY_S = 10.0


@dataclass
class Tally:
    """Runs completed (with their latency) and failed during one churn period."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    leaked_containers: int = 0
    leaked_staging: int = 0
    after_stop: int = 0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def _loop(one_run: Callable[[], Awaitable[float]], deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        try:
            tally.latencies.append(await one_run())
        except Exception as exc:
            tally.failures.append(repr(exc))


async def _reporter(label: str, tally: Tally, began: float, deadline: float) -> None:
    while time.monotonic() < deadline:
        await asyncio.sleep(_REPORT_EVERY_S)
        elapsed = time.monotonic() - began
        say(
            f"churn[{label}]: {len(tally.latencies)} runs in {elapsed:.0f}s, {len(tally.failures)} failed"
        )


async def churn_for(
    label: str, runners: list[Callable[[], Awaitable[float]]], seconds: float
) -> Tally:
    tally = Tally()
    began = time.monotonic()
    deadline = began + seconds
    reporter = asyncio.create_task(_reporter(label, tally, began, deadline))
    await asyncio.gather(*(_loop(runner, deadline, tally) for runner in runners))
    reporter.cancel()
    tally.seconds = time.monotonic() - began
    return tally


def server_runner(session: Session) -> Callable[[], Awaitable[float]]:
    async def one() -> float:
        sent_at = await session.run(PYTHON_HELLO.language, PYTHON_HELLO.source)
        ended_at, exit_message = await session.expect_timed("exit")
        if exit_message["status"] != "exited":
            raise RuntimeError(f"run ended {exit_message['status']}: {exit_message.get('message')}")
        return ended_at - sent_at

    return one


async def _count_leaks(ctx: BenchContext, server_id: str, pool_size: int, tally: Tally) -> None:
    """Leftovers with the server still up: non-running containers, extra ones, stray folders."""
    leaks = await leaks_while_up(ctx.docker, server_id, pool_size)
    tally.leaked_containers, tally.leaked_staging = leaks.containers, leaks.staging


async def _through_server(ctx: BenchContext, pool: bool, seconds: float) -> Tally:
    server_id = f"ce-bench-churn-{'warm' if pool else 'cold'}"
    async with bench_server(server_env(server_id, pool=pool)) as server:
        pool_size = await idle_count(ctx.docker, server_id)
        sessions = [await Session.open(ctx.http, server.ws_url) for _ in range(CLIENTS)]
        try:
            tally = await churn_for(server_id, [server_runner(s) for s in sessions], seconds)
        finally:
            await asyncio.gather(*(session.close() for session in sessions))
        await _count_leaks(ctx, server_id, pool_size, tally)
    found = await leftovers(ctx.docker, [server_id])
    tally.after_stop = found.count
    return tally


async def _through_docker_run(seconds: float) -> Tally:
    with staged(PYTHON_HELLO) as path:
        argv = docker_run_argv(baseline_config(PYTHON_HELLO, path, runtime="runc", tty=False))

        async def one() -> float:
            return (await docker_run(argv)).total_s

        return await churn_for("docker run", [one] * CLIENTS, seconds)


def _row(mode: str, tally: Tally, baseline: Tally) -> list[str]:
    latency = Summary.of(tally.latencies or [float("nan")]).scaled(1000)
    return [
        mode,
        fmt(tally.per_second, 2),
        fmt_ratio(ratio(tally.per_second, baseline.per_second)),
        str(len(tally.latencies)),
        fmt(latency.median, 0),
        fmt(latency.p90, 0),
        fmt(latency.p99, 0),
        str(len(tally.failures)),
        str(tally.leaked_containers),
        str(tally.leaked_staging),
        str(tally.after_stop),
    ]


async def run(ctx: BenchContext) -> BenchResult:
    """Sustained runs per second, pool off, pool on, and docker run."""
    result = BenchResult(name="churn", title="Churn", what=__doc__.split("\n\n", 1)[1])
    seconds = 8.0 if ctx.quick else 60.0
    began = time.monotonic()
    tallies = {
        COLD: await _through_server(ctx, False, seconds),
        WARM: await _through_server(ctx, True, seconds),
        DOCKER_RUN: await _through_docker_run(seconds / 2),
    }
    baseline = tallies[DOCKER_RUN]
    result.tables.append(
        Table(
            title=f"Churn: complete hello-world runs, {CLIENTS} clients",
            headers=[
                "path",
                "runs/s",
                "÷ docker run",
                "runs",
                "latency p50 ms",
                "p90",
                "p99",
                "failed",
                "leaked containers",
                "leaked staging",
                "left after stop",
            ],
            rows=[_row(mode, tally, baseline) for mode, tally in tallies.items()],
            notes=(
                f"The server paths ran {seconds:.0f} s each, docker run {seconds / 2:.0f} s. "
                "latency: `run` sent → `exit` received (the CLI's exit for docker run).",
                "leaked: counted with the server still up, once its cleanups settled (a "
                "container that is not running, or more running than the idle warm pool; a "
                "staging folder no container mounts); left after stop: what remained once "
                "the server had shut down.",
            ),
        )
    )
    for mode, tally in tallies.items():
        result.headline.append(
            f"churn {mode}: {tally.per_second:.2f} runs/s "
            f"({fmt_ratio(ratio(tally.per_second, baseline.per_second))} docker run), "
            f"{len(tally.failures)} failed, leaked {tally.leaked_containers} containers "
            f"and {tally.leaked_staging} staging folders"
        )
        result.data[mode] = {
            "seconds": tally.seconds,
            "runs": len(tally.latencies),
            "latencies_ms": [round(v * 1000, 1) for v in tally.latencies],
            "failures": tally.failures[:20],
            "leaked_containers": tally.leaked_containers,
            "leaked_staging": tally.leaked_staging,
            "after_stop": tally.after_stop,
        }
    result.seconds = time.monotonic() - began
    return result
