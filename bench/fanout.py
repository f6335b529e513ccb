"""8. Live rooms: one presenter, 0, 50 and 200 viewers, one of them stalled.

The presenter shares a room and runs the echo program (raw terminal, writes
back each key); its viewers watch from another process (`fanout_viewers`),
one of them never reading a byte. At each level: the presenter's keystroke
echo (a token out, its echo back at the presenter), the lag from the
presenter's echo frame to the same frame at every reading viewer, the
presenter's output throughput on a flood, and the server's memory per
viewer. Baseline in the same run: the same presenter with no viewer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.client import LONG_LIMITS, Session
from bench.common import BenchContext, BenchResult
from bench.fleet import READY
from bench.programs import ECHO_PYTHON, flood_python
from bench.progress import say
from bench.server import MIB, RESULTS_DIR, ROOT, BenchServer, bench_server, server_env
from bench.stats import Summary, Table, fmt, fmt_ratio, ratio

SERVER_ID = "ce-bench-fanout"
_SETTLE_S = 1.0
_PROBE_GAP_S = 0.01
_CHILD_TIMEOUT_S = 120.0
#: The viewers' report is one JSON line: every token's arrival at every viewer.
_REPORT_LIMIT = 256 * 1024 * 1024
_HEADERS = [
    "viewers", "echo p50 ms", "echo p99 ms", "p99 vs 0", "flood MiB/s", "÷ 0 viewers",
    "lag p50 ms", "lag p99 ms", "server CPU ms/echo", "KiB/viewer", "reading at the end",
    "stalled closed 1013",
]  # fmt: skip


@dataclass
class Level:
    """What one level measured."""

    viewers: int
    echo_ms: Summary
    lag_ms: Summary | None
    throughput_mib_s: float
    rss_per_viewer_kib: float | None
    #: Server CPU time per probe while probing: what one echo costs with its fan-out.
    cpu_ms_per_echo: float
    reading_left: int
    stalled_closed: bool | None


class ViewerProcess:
    """The viewers' process: started per level, stopped for its report."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def start(cls, server: BenchServer, room: str, count: int) -> ViewerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.fanout_viewers", server.ws_url, room, str(count),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=_REPORT_LIMIT,
        )  # fmt: skip
        viewers = cls(process)
        assert process.stdout is not None
        async with asyncio.timeout(_CHILD_TIMEOUT_S):
            line = await process.stdout.readline()
        if line.strip() != b"ready":
            await viewers.kill()
            raise RuntimeError(f"viewer process did not start: {line!r}")
        return viewers

    async def report(self) -> dict[str, Any]:
        """Stop it; what it saw."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(b"stop\n")
        await self._process.stdin.drain()
        async with asyncio.timeout(_CHILD_TIMEOUT_S):
            line = await self._process.stdout.readline()
            await self._process.wait()
        report: dict[str, Any] = json.loads(line)
        return report

    async def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


async def _echo_probes(
    presenter: Session, probes: int, first: int
) -> dict[int, tuple[float, float]]:
    """Token → (sent, echoed at the presenter), over `probes` tokens from `first`."""
    await presenter.run("python", ECHO_PYTHON, limits=LONG_LIMITS)
    await presenter.expect("started")
    await presenter.output_until(READY)
    times = {}
    for token in range(first, first + probes):
        needle = f"<{token}>".encode()
        sent = await presenter.keys(needle)
        times[token] = (sent, await presenter.output_until(needle))
        await asyncio.sleep(_PROBE_GAP_S)
    await presenter.ws.send_str(json.dumps({"type": "kill"}))
    await presenter.expect("exit")
    return times


async def _flood(presenter: Session, total: int) -> float:
    """The presenter's output rate (MiB/s) on a flood of `total` bytes."""
    presenter.keep_output = False
    limits = {**LONG_LIMITS, "output_bytes": total + MIB}
    await presenter.run("python", flood_python(total), limits=limits)
    await presenter.expect("exit", within_s=300)
    presenter.keep_output = True
    assert presenter.first_output_at is not None
    assert presenter.last_output_at is not None
    seconds = presenter.last_output_at - presenter.first_output_at
    return presenter.output_bytes / MIB / max(seconds, 1e-6)


async def _level(
    presenter: Session, server: BenchServer, room: str, count: int, ctx: BenchContext
) -> Level:
    rss_before = server.rss_bytes()
    viewers = await ViewerProcess.start(server, room, count) if count else None
    try:
        await asyncio.sleep(_SETTLE_S)
        rss_after = server.rss_bytes()
        say(f"fanout: {count} viewers, probing")
        cpu_before = server.cpu_seconds()
        echoes = await _echo_probes(presenter, ctx.reps(300, 40), first=count * 10_000)
        cpu_ms_per_echo = (server.cpu_seconds() - cpu_before) * 1000 / len(echoes)
        say(f"fanout: {count} viewers, flood")
        throughput = await _flood(presenter, ctx.reps(32, 8) * MIB)
        await asyncio.sleep(_SETTLE_S)
        report = await viewers.report() if viewers else None
    finally:
        if viewers:
            await viewers.kill()
    lags = [
        arrived - echoes[int(token)][1]
        for seen in (report["arrivals"] if report else [])
        for token, arrived in seen.items()
        if int(token) in echoes
    ]
    return Level(
        viewers=count,
        echo_ms=Summary.of([echoed - sent for sent, echoed in echoes.values()]).scaled(1000),
        lag_ms=Summary.of(lags).scaled(1000) if lags else None,
        throughput_mib_s=throughput,
        rss_per_viewer_kib=(rss_after - rss_before) / 1024 / count if count else None,
        cpu_ms_per_echo=cpu_ms_per_echo,
        reading_left=(count - 1 - report["closed"]) if report else 0,
        stalled_closed=report["stalled_close_code"] == 1013 if report else None,
    )


def _row(level: Level, base: Level, best_echo_p99: float) -> list[str]:
    lag = level.lag_ms
    return [
        str(level.viewers),
        fmt(level.echo_ms.median, 2),
        fmt(level.echo_ms.p99, 2),
        f"{level.echo_ms.p99 - best_echo_p99:+.2f}",
        fmt(level.throughput_mib_s),
        fmt_ratio(ratio(level.throughput_mib_s, base.throughput_mib_s)),
        fmt(lag.median, 2) if lag else "—",
        fmt(lag.p99, 2) if lag else "—",
        fmt(level.cpu_ms_per_echo, 2),
        fmt(level.rss_per_viewer_kib, 0) if level.rss_per_viewer_kib is not None else "—",
        f"{level.reading_left}/{level.viewers - 1}" if level.viewers else "—",
        {None: "—", True: "yes", False: "no"}[level.stalled_closed],
    ]


async def run(ctx: BenchContext) -> BenchResult:
    """The presenter's echo and throughput, and viewer lag, at 0, 50 and 200 viewers."""
    result = BenchResult(name="fanout", title="Live rooms", what=__doc__.split("\n\n", 1)[1])
    # The baseline is measured again at the end: the host is shared, and the
    # ratios are taken against the better of the two (the stricter).
    counts = (0, 10, 0) if ctx.quick else (0, 50, 200, 0)
    # A room records its runs (as deployed); the recordings stay with the results.
    env = server_env(
        SERVER_ID,
        pool=True,
        CE_SHARING__MAX_VIEWERS="1000",
        CE_SHARING__VIEWER_STALL_S="5",
        CE_RECORDINGS__DIR=str(RESULTS_DIR / "recordings"),
        CE_RECORDINGS__MAX_BYTES=str(256 * MIB),
    )
    began = time.monotonic()
    async with bench_server(env) as server:
        presenter = await Session.open(ctx.http, server.ws_url)
        try:
            await presenter.ws.send_str(json.dumps({"type": "share"}))
            room = (await presenter.expect("shared"))["room"]
            levels = [await _level(presenter, server, room, count, ctx) for count in counts]
        finally:
            await presenter.close()
    base = max((level for level in levels if not level.viewers), key=lambda b: b.throughput_mib_s)
    best_echo = min(level.echo_ms.p99 for level in levels if not level.viewers)
    for index, level in enumerate(levels):
        result.data[f"{level.viewers}" if level.viewers else f"0-{index}"] = {
            "echo_ms": level.echo_ms.as_dict(),
            "lag_ms": level.lag_ms.as_dict() if level.lag_ms else None,
            "throughput_mib_s": level.throughput_mib_s,
            "rss_per_viewer_kib": level.rss_per_viewer_kib,
            "cpu_ms_per_echo": level.cpu_ms_per_echo,
            "reading_left": level.reading_left,
            "stalled_closed_1013": level.stalled_closed,
        }
    result.tables.append(
        Table(
            title="One presenter, its viewers (one stalled)",
            headers=_HEADERS,
            rows=[_row(level, base, best_echo) for level in levels],
            notes=(
                "echo: the presenter sends one token, its program echoes it; timed at the "
                "presenter. lag: from that echo frame at the presenter to the same frame at "
                "each reading viewer (viewers read in a process of their own; both clocks "
                "are the system's monotonic clock).",
                "flood: the presenter's program writes as fast as it can while every viewer "
                "watches; a viewer that cannot keep up is resynced, then closed 1013 "
                "(reading at the end: the reading viewers still watching).",
                "server CPU ms/echo: the server process's CPU time while probing, per probe "
                "(the echo, its fan-out to every viewer, the rest of the run).",
                "KiB/viewer: the server's resident memory grown by the viewers joining.",
                "stalled: an aiohttp client that never reads; its library and the kernel "
                "buffer megabytes for it, so the server may never find it stalled ('no'); "
                "tests/integration/test_rooms_isolation.py shows the 1013 with a socket that "
                "truly reads nothing.",
            ),
        )
    )
    top = max(levels, key=lambda level: level.viewers)
    if top.lag_ms:
        result.headline.append(
            f"{top.viewers} viewers: presenter echo p99 {top.echo_ms.p99:.2f} ms "
            f"({top.echo_ms.p99 - best_echo:+.2f} ms vs none), flood "
            f"{fmt_ratio(ratio(top.throughput_mib_s, base.throughput_mib_s))} of alone, "
            f"viewer lag p99 {top.lag_ms.p99:.1f} ms"
        )
    result.seconds = time.monotonic() - began
    return result
