"""8. Live rooms: one presenter, 0, 50 and 200 viewers, one of them stalled.

The presenter shares a room and runs the echo program (raw terminal, writes
back each key); viewers watch it on their own sockets, one of which never
reads a byte. At each level: the presenter's keystroke echo (one byte out,
its echo back at the presenter), the lag from the presenter's echo frame to
the same frame at every reading viewer, the presenter's output throughput on
a flood, and the server's memory per viewer. Baseline in the same run: the
same presenter with no viewer (level 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass

import aiohttp

from bench.client import LONG_LIMITS, Session
from bench.common import BenchContext, BenchResult
from bench.fleet import READY
from bench.programs import ECHO_PYTHON, flood_python
from bench.progress import say
from bench.server import MIB, BenchServer, bench_server, server_env
from bench.stats import Summary, Table, fmt, fmt_ratio, ratio

SERVER_ID = "ce-bench-fanout"
_JOIN_CONCURRENCY = 8
_SETTLE_S = 1.0
_PROBE_GAP_S = 0.01
_KEYS = b"abcdefghijklmnopqrstuvwxyz"
_HEADERS = [
    "viewers", "echo p50 ms", "echo p99 ms", "p99 vs 0", "flood MiB/s",
    "÷ 0 viewers", "lag p50 ms", "lag p99 ms", "KiB/viewer", "reading after flood",
]  # fmt: skip


@dataclass
class Level:
    """What one level measured."""

    viewers: int
    echo_ms: Summary
    lag_ms: Summary | None
    throughput_mib_s: float
    rss_per_viewer_kib: float | None
    viewers_left: int


class Room:
    """The presenter's room and the sockets watching it."""

    def __init__(self, http: aiohttp.ClientSession, server: BenchServer) -> None:
        self._http = http
        self._server = server
        self.presenter: Session | None = None
        self.room = ""
        self.viewers: list[Session] = []
        self.stalled: list[aiohttp.ClientWebSocketResponse] = []

    async def open(self) -> None:
        self.presenter = await Session.open(self._http, self._server.ws_url)
        await self.presenter.ws.send_str(json.dumps({"type": "share"}))
        self.room = (await self.presenter.expect("shared"))["room"]

    async def grow(self, count: int) -> None:
        """Watching viewers up to `count`, one of them stalled."""
        if count and not self.stalled:
            ws = await self._http.ws_connect(self._server.ws_url, max_msg_size=0)
            await ws.send_str(json.dumps({"type": "watch", "room": self.room}))
            self.stalled.append(ws)  # never read from here on
        gate = asyncio.Semaphore(_JOIN_CONCURRENCY)

        async def join() -> Session:
            async with gate:
                viewer = await Session.open(self._http, self._server.ws_url)
                await viewer.ws.send_str(json.dumps({"type": "watch", "room": self.room}))
                await viewer.expect("watching")
                return viewer

        missing = max(count - len(self.stalled) - len(self.viewers), 0)
        self.viewers += await asyncio.gather(*(join() for _ in range(missing)))

    def drop_closed(self) -> int:
        """Forget viewers the server closed (fell behind); how many are left."""
        self.viewers = [viewer for viewer in self.viewers if not viewer.ws.closed]
        return len(self.viewers)

    async def close(self) -> None:
        sessions = [*self.viewers, *([self.presenter] if self.presenter else [])]
        await asyncio.gather(*(session.close() for session in sessions))
        for ws in self.stalled:
            with contextlib.suppress(Exception):
                await ws.close()


async def _echo_probes(room: Room, probes: int) -> tuple[list[float], list[float]]:
    """Presenter round trips and viewer lags (seconds) over `probes` keys."""
    presenter = room.presenter
    assert presenter is not None
    await presenter.run("python", ECHO_PYTHON, limits=LONG_LIMITS)
    await presenter.expect("started")
    await presenter.output_until(READY)
    for viewer in room.viewers:
        viewer.keep_output = True
    ready = await asyncio.gather(
        *(viewer.output_until(READY, within_s=30) for viewer in room.viewers),
        return_exceptions=True,
    )
    # A viewer the server closed (it fell behind the last flood) is not probed.
    room.viewers = [v for v, got in zip(room.viewers, ready, strict=True) if isinstance(got, float)]
    round_trips: list[float] = []
    lags: list[float] = []
    for index in range(probes):
        key = _KEYS[index % len(_KEYS) : index % len(_KEYS) + 1]
        sent = await presenter.keys(key)
        echoed = await presenter.output_until(key)
        round_trips.append(echoed - sent)
        arrivals = await asyncio.gather(
            *(viewer.output_until(key, within_s=30) for viewer in room.viewers)
        )
        lags += [arrived - echoed for arrived in arrivals]
        await asyncio.sleep(_PROBE_GAP_S)
    await presenter.ws.send_str(json.dumps({"type": "kill"}))
    await presenter.expect("exit")
    return round_trips, lags


async def _flood(room: Room, total: int) -> float:
    """The presenter's output rate (MiB/s) on a flood of `total` bytes."""
    presenter = room.presenter
    assert presenter is not None
    for viewer in room.viewers:
        viewer.keep_output = False
        viewer.reset_output()
    presenter.keep_output = False
    limits = {**LONG_LIMITS, "output_bytes": total + MIB}
    await presenter.run("python", flood_python(total), limits=limits)
    await presenter.expect("exit", within_s=300)
    presenter.keep_output = True
    assert presenter.first_output_at is not None
    assert presenter.last_output_at is not None
    seconds = presenter.last_output_at - presenter.first_output_at
    return presenter.output_bytes / MIB / max(seconds, 1e-6)


async def _quiet(room: Room, *, within_s: float = 30.0) -> None:
    """Wait until no viewer has had output for a second (they caught up or were closed)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        last = [v.last_output_at for v in room.viewers if v.last_output_at is not None]
        if not last or time.perf_counter() - max(last) > _SETTLE_S:
            return
        await asyncio.sleep(0.2)


async def _stalled_closed(room: Room) -> int:
    """How many stalled viewers the server has closed with 1013 (read what they hold)."""
    closed = 0
    for ws in room.stalled:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(15):
                while (await ws.receive()).type not in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    pass
        closed += ws.close_code == 1013
    return closed


async def _level(room: Room, server: BenchServer, count: int, ctx: BenchContext) -> Level:
    rss_before = server.rss_bytes()
    before = len(room.viewers) + len(room.stalled)
    await room.grow(count)
    added = len(room.viewers) + len(room.stalled) - before
    await asyncio.sleep(_SETTLE_S)
    rss_after = server.rss_bytes()
    say(f"fanout: {count} viewers, probing")
    round_trips, lags = await _echo_probes(room, ctx.reps(200, 30))
    say(f"fanout: {count} viewers, flood")
    throughput = await _flood(room, ctx.reps(16, 8) * MIB)
    await _quiet(room)
    left = room.drop_closed()
    return Level(
        viewers=count,
        echo_ms=Summary.of(round_trips).scaled(1000),
        lag_ms=Summary.of(lags).scaled(1000) if lags else None,
        throughput_mib_s=throughput,
        rss_per_viewer_kib=(rss_after - rss_before) / 1024 / added if added else None,
        viewers_left=left if count else 0,
    )


async def run(ctx: BenchContext) -> BenchResult:
    """The presenter's echo and throughput, and viewer lag, at 0, 50 and 200 viewers."""
    result = BenchResult(name="fanout", title="Live rooms", what=__doc__.split("\n\n", 1)[1])
    counts = (0, 10) if ctx.quick else (0, 50, 200)
    env = server_env(
        SERVER_ID,
        pool=True,
        CE_SHARING__MAX_VIEWERS="1000",
        CE_SHARING__VIEWER_STALL_S="5",
    )
    levels: list[Level] = []
    async with bench_server(env) as server:
        room = Room(ctx.http, server)
        try:
            await room.open()
            for count in counts:
                levels.append(await _level(room, server, count, ctx))
            stalled_closed = await _stalled_closed(room)
        finally:
            await room.close()
    base = levels[0]
    rows = []
    for level in levels:
        lag = level.lag_ms
        rows.append(
            [
                str(level.viewers),
                fmt(level.echo_ms.median, 2),
                fmt(level.echo_ms.p99, 2),
                f"{level.echo_ms.p99 - base.echo_ms.p99:+.2f}",
                fmt(level.throughput_mib_s),
                fmt_ratio(ratio(level.throughput_mib_s, base.throughput_mib_s)),
                fmt(lag.median, 2) if lag else "—",
                fmt(lag.p99, 2) if lag else "—",
                fmt(level.rss_per_viewer_kib, 0) if level.rss_per_viewer_kib else "—",
                f"{level.viewers_left}/{max(level.viewers - 1, 0)}" if level.viewers else "—",
            ]
        )
        result.data[str(level.viewers)] = {
            "echo_ms": level.echo_ms.as_dict(),
            "lag_ms": lag.as_dict() if lag else None,
            "throughput_mib_s": level.throughput_mib_s,
            "rss_per_viewer_kib": level.rss_per_viewer_kib,
            "viewers_left_after_flood": level.viewers_left,
        }
    result.data["stalled_closed_1013"] = stalled_closed
    result.tables.append(
        Table(
            title="One presenter, its viewers (one stalled)",
            headers=_HEADERS,
            rows=rows,
            notes=(
                "echo: the presenter sends one key, its program echoes it; timed at the "
                "presenter. lag: from that echo frame at the presenter to the same frame at "
                "each reading viewer (all sockets read by this one client process).",
                "flood: the presenter's program writes as fast as it can; viewers that cannot "
                "keep up are resynced, then closed 1013 (reading after flood: those still "
                "watching, of the reading ones).",
                f"the stalled viewer never reads; closed 1013 by the end: {stalled_closed}.",
                "KiB/viewer: the server's resident memory grown by joining viewers, per viewer.",
            ),
        )
    )
    top = levels[-1]
    if top.lag_ms:
        result.headline.append(
            f"{top.viewers} viewers: presenter echo p99 {top.echo_ms.p99:.2f} ms "
            f"({top.echo_ms.p99 - base.echo_ms.p99:+.2f} ms vs none), flood "
            f"{fmt_ratio(ratio(top.throughput_mib_s, base.throughput_mib_s))} of alone, "
            f"viewer lag p99 {top.lag_ms.p99:.1f} ms"
        )
    return result
