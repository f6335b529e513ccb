"""7. Surfaces: the compatibility APIs against the native one, hello world to its end.

A Python `print("hello")` through each of the server's four HTTP surfaces,
with the body each surface's own clients send: native `POST /api/v1/execute`
`{"language", "code"}`, Piston v2 `POST /piston/api/v2/execute`
`{"language", "version": "*", "files"}`, Judge0 CE `POST
/judge0/submissions?wait=true` `{"source_code", "language_id": 71}`, Codapi
`POST /codapi/v1/exec` `{"sandbox", "command": "run", "files": {"": ...}}`.
One server, warm pool on; every answer must say the program printed `hello`
(anything else is counted as failed). Latency: one request at a time, the
four surfaces interleaved sample by sample (the first rotates), the engine
settled before each, from the request sent to the whole answer read.
Throughput: 16 clients per surface, the surfaces one after the other, native
first and last so drift shows; ratios are against the two native periods'
mean.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.client import BenchError
from bench.common import BenchContext, BenchResult, rotated
from bench.engine import idle_count, wait_settled
from bench.progress import Ticker, say
from bench.server import RESULTS_DIR, bench_server, server_env
from bench.stats import SUMMARY_HEADERS, Summary, Table, fmt, fmt_ratio, ratio, summary_cells

SERVER_ID = "ce-bench-surfaces"
CODE = 'print("hello")\n'
EXPECTED = "hello\n"
CLIENTS = 16
WARMUP_ROUNDS = 2
_LAUNCHER_SETTLE_S = 0.15
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass(frozen=True, slots=True)
class Surface:
    """One way in: its path, its clients' body, and how its answer says what ran."""

    name: str
    path: str
    body: dict[str, Any]
    status: int
    #: The program's stdout, if the answer says it ended well; else None.
    stdout: Callable[[dict[str, Any]], str | None]


def _native(answer: dict[str, Any]) -> str | None:
    ok = answer.get("status") == "exited" and answer.get("exit_code") == 0
    return answer.get("stdout") if ok else None


def _piston(answer: dict[str, Any]) -> str | None:
    stage = answer.get("run") or {}
    return stage.get("stdout") if stage.get("code") == 0 else None


def _judge0(answer: dict[str, Any]) -> str | None:
    accepted = (answer.get("status") or {}).get("id") == 3
    return answer.get("stdout") if accepted else None


def _codapi(answer: dict[str, Any]) -> str | None:
    return answer.get("stdout") if answer.get("ok") is True else None


NATIVE = Surface("native", "/api/v1/execute", {"language": "python", "code": CODE}, 200, _native)
SURFACES = (
    NATIVE,
    Surface(
        "Piston",
        "/piston/api/v2/execute",
        {"language": "python", "version": "*", "files": [{"content": CODE}]},
        200,
        _piston,
    ),
    Surface(
        "Judge0",
        "/judge0/submissions?wait=true",
        {"source_code": CODE, "language_id": 71},
        201,
        _judge0,
    ),
    Surface(
        "Codapi",
        "/codapi/v1/exec",
        {"sandbox": "python", "command": "run", "files": {"": CODE}},
        200,
        _codapi,
    ),
)


async def one_run(http: aiohttp.ClientSession, base_url: str, surface: Surface) -> float:
    """One hello world through `surface`; seconds from sending to the whole answer read."""
    began = time.perf_counter()
    async with http.post(
        base_url + surface.path, json=surface.body, timeout=_REQUEST_TIMEOUT
    ) as response:
        text = await response.text()
        ended = time.perf_counter()
    if response.status != surface.status:
        raise BenchError(f"{surface.name}: HTTP {response.status} {text[:200]}")
    stdout = surface.stdout(json.loads(text))
    if stdout != EXPECTED:
        raise BenchError(f"{surface.name}: the run did not print hello: {text[:200]}")
    return ended - began


@dataclass
class Tally:
    """Latencies of the runs that printed hello, and what went wrong with the rest."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def summary_ms(self) -> Summary:
        return Summary.of(self.latencies or [float("nan")]).scaled(1000)

    async def take(self, http: aiohttp.ClientSession, base_url: str, surface: Surface) -> None:
        try:
            self.latencies.append(await one_run(http, base_url, surface))
        except Exception as exc:
            self.failures.append(repr(exc))


async def _latency(
    ctx: BenchContext, base_url: str, expected: dict[str, int], reps: int
) -> dict[str, Tally]:
    for _ in range(WARMUP_ROUNDS):
        for surface in SURFACES:
            await wait_settled(ctx.docker, expected)
            await Tally().take(ctx.http, base_url, surface)
    tallies = {surface.name: Tally() for surface in SURFACES}
    ticker = Ticker("surfaces latency samples", reps * len(SURFACES))
    for rep in range(reps):
        for surface in rotated(SURFACES, rep):
            await wait_settled(ctx.docker, expected)
            await asyncio.sleep(_LAUNCHER_SETTLE_S)
            await tallies[surface.name].take(ctx.http, base_url, surface)
            ticker.tick()
    return tallies


async def _throughput(ctx: BenchContext, base_url: str, surface: Surface, seconds: float) -> Tally:
    tally = Tally()
    began = time.monotonic()
    deadline = began + seconds

    async def client() -> None:
        while time.monotonic() < deadline:
            await tally.take(ctx.http, base_url, surface)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    tally.seconds = time.monotonic() - began
    say(f"surfaces[{surface.name}]: {tally.per_second:.2f} runs/s, {len(tally.failures)} failed")
    return tally


def _latency_table(tallies: dict[str, Tally]) -> Table:
    native = tallies[NATIVE.name].summary_ms()
    rows = []
    for surface in SURFACES:
        tally = tallies[surface.name]
        summary = tally.summary_ms()
        rows.append(
            [
                surface.name,
                f"`{surface.path}`",
                *summary_cells(summary),
                fmt_ratio(ratio(summary.median, native.median)),
                str(len(tally.failures)),
            ]
        )
    return Table(
        title="Surfaces: a Python hello world to its end, one request at a time (ms)",
        headers=["surface", "request", *SUMMARY_HEADERS, "÷ native", "failed"],
        rows=rows,
        notes=(
            "From the request sent to the whole answer read, over loopback with keep-alive; "
            "n counts the runs that printed hello (failed: any other answer).",
            "÷ native: this surface's median over the native API's, measured in the same "
            "run, interleaved sample by sample.",
        ),
    )


def _throughput_table(
    periods: list[tuple[str, Tally]], native_rate: float, seconds: float
) -> Table:
    rows = []
    for label, tally in periods:
        latency = tally.summary_ms()
        rows.append(
            [
                label,
                fmt(tally.per_second, 2),
                fmt_ratio(ratio(tally.per_second, native_rate)),
                str(len(tally.latencies)),
                fmt(latency.median, 0),
                fmt(latency.p90, 0),
                fmt(latency.p99, 0),
                str(len(tally.failures)),
            ]
        )
    return Table(
        title=f"Surfaces: hello-world runs per second, {CLIENTS} clients",
        headers=["surface", "runs/s", "÷ native", "runs", "latency p50 ms", "p90", "p99", "failed"],
        rows=rows,
        notes=(
            f"Each period {seconds:.0f} s, in the order shown; the engine settled (the pool "
            "refilled) before each.",
            f"÷ native: over the mean of the two native periods ({native_rate:.2f} runs/s).",
        ),
    )


async def run(ctx: BenchContext) -> BenchResult:
    """The four surfaces: latency one at a time, then runs per second under 16 clients."""
    result = BenchResult(
        name="surfaces",
        title="Compatibility surfaces",
        what=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
    )
    reps = ctx.reps(15, 3)
    seconds = 4.0 if ctx.quick else 15.0
    began = time.monotonic()
    with tempfile.TemporaryDirectory(dir=_results_dir(), prefix="surfaces-judge0-") as folder:
        env = server_env(SERVER_ID, pool=True, CE_JUDGE0__DATABASE=f"{folder}/judge0.sqlite3")
        async with bench_server(env) as server:
            pool_size = await idle_count(ctx.docker, SERVER_ID)
            say(f"surfaces: the server keeps {pool_size} idle containers")
            expected = {SERVER_ID: pool_size}
            latency = await _latency(ctx, server.url, expected, reps)
            periods: list[tuple[str, Tally]] = []
            for surface in (*SURFACES, NATIVE):
                await wait_settled(ctx.docker, expected)
                label = surface.name if surface is not NATIVE or not periods else "native (again)"
                periods.append((label, await _throughput(ctx, server.url, surface, seconds)))
    native_rate = (periods[0][1].per_second + periods[-1][1].per_second) / 2
    result.tables += [
        _latency_table(latency),
        _throughput_table(periods, native_rate, seconds),
    ]
    result.headline.append(_headline(latency, periods, native_rate))
    result.data = {
        "latency_ms": {
            name: {
                "samples": [round(v * 1000, 2) for v in tally.latencies],
                "failures": tally.failures[:20],
            }
            for name, tally in latency.items()
        },
        "throughput": [
            {
                "surface": label,
                "seconds": tally.seconds,
                "runs": len(tally.latencies),
                "runs_per_s": tally.per_second,
                "latencies_ms": [round(v * 1000, 1) for v in tally.latencies],
                "failures": tally.failures[:20],
            }
            for label, tally in periods
        ],
    }
    result.seconds = time.monotonic() - began
    return result


def _results_dir() -> Path:
    """Judge0's SQLite file lives here for the run (on disk, as beside a deployed server)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR


def _headline(
    latency: dict[str, Tally], periods: list[tuple[str, Tally]], native_rate: float
) -> str:
    native = latency[NATIVE.name].summary_ms().median
    medians = ", ".join(
        f"{s.name} {latency[s.name].summary_ms().median:.0f} ms"
        + (
            ""
            if s is NATIVE
            else f" ({fmt_ratio(ratio(latency[s.name].summary_ms().median, native))})"
        )
        for s in SURFACES
    )
    rates = ", ".join(
        f"{label} {tally.per_second:.2f}"
        + (
            ""
            if label.startswith("native")
            else f" ({fmt_ratio(ratio(tally.per_second, native_rate))})"
        )
        for label, tally in periods
    )
    failed = sum(len(t.failures) for t in latency.values()) + sum(
        len(t.failures) for _, t in periods
    )
    return (
        f"surfaces: hello world median {medians}; {CLIENTS} clients runs/s {rates}; {failed} failed"
    )
