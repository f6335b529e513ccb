"""3. Output throughput: a program writing 200 MiB as fast as it can.

Through the server, the client reads binary frames as fast as it can (no flow
control, the output cap raised to 256 MiB for this run). Baseline, interleaved
run by run: the same program in the same container spec, its output read
directly from the engine's attach stream with aiodocker. Both go through a
terminal (the server's runs always have one), so the bytes are 'x' with no
newline for the terminal to rewrite.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from bench.baseline import attached, baseline_config, staged
from bench.client import LONG_LIMITS, BenchError, Session
from bench.common import BenchContext, BenchResult, rotated
from bench.engine import BASELINE_OWNER, idle_count, wait_settled
from bench.programs import flood_python, python_program
from bench.progress import say
from bench.server import MIB, bench_server, server_env
from bench.stats import SHORT_SUMMARY_HEADERS, Summary, Table, fmt_ratio, ratio, summary_cells

SERVER_ID = "ce-bench-throughput"
SERVER, FLOOR = "server", "engine attach"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer: bytes received, first byte to last byte (seconds), and to the end."""

    received: int
    streaming_s: float
    total_s: float

    @property
    def mib_per_s(self) -> float:
        return self.received / MIB / self.streaming_s


async def _through_server(session: Session, source: str, size: int) -> Transfer:
    limits = {**LONG_LIMITS, "output_bytes": size + MIB}
    sent_at = await session.run("python", source, limits=limits)
    ended_at, exit_message = await session.expect_timed("exit", within_s=300)
    if exit_message["status"] != "exited" or session.output_bytes != size:
        raise BenchError(f"flood got {session.output_bytes} bytes: {exit_message}")
    first, last = session.first_output_at, session.last_output_at
    if first is None or last is None:
        raise BenchError("the flood printed nothing")
    return Transfer(session.output_bytes, last - first, ended_at - sent_at)


async def _through_engine(ctx: BenchContext, source: str, size: int) -> Transfer:
    program = python_program("flood", source)
    with staged(program) as path:
        config = baseline_config(program, path, runtime="runc", tty=True)
        began = time.perf_counter()
        async with attached(ctx.docker, config) as (container, stream):
            await container.start()
            received, first_at = 0, 0.0
            while (message := await stream.read_out()) is not None:
                if not received:
                    first_at = time.perf_counter()
                received += len(message.data)
            last_at = time.perf_counter()
            await container.wait()
    if received != size:
        raise BenchError(f"engine flood got {received} of {size} bytes")
    return Transfer(received, last_at - first_at, time.perf_counter() - began)


def _table(samples: dict[str, list[Transfer]], size: int) -> Table:
    rates = {mode: Summary.of([t.mib_per_s for t in runs]) for mode, runs in samples.items()}
    rows = []
    for mode, rate in rates.items():
        seconds = Summary.of([t.total_s for t in samples[mode]])
        rows.append(
            [
                mode,
                *summary_cells(rate, tail=False),
                fmt_ratio(ratio(rate.median, rates[FLOOR].median)),
                f"{seconds.median:.2f}",
            ]
        )
    return Table(
        title=f"Output throughput, {size // MIB} MiB through a terminal (MiB/s)",
        headers=["path", *SHORT_SUMMARY_HEADERS, "÷ engine attach", "complete run s"],
        rows=rows,
        notes=(
            "MiB/s from the first output byte to the last, as the reader saw them.",
            "complete run s: median from `run` sent (or container create) to the end.",
        ),
    )


async def run(ctx: BenchContext) -> BenchResult:
    """Flood the output, read it through the server and straight from the engine."""
    result = BenchResult(
        name="throughput", title="Output throughput", what=__doc__.split("\n\n", 1)[1]
    )
    size = (20 if ctx.quick else 200) * MIB
    reps = ctx.reps(4, 2)
    source = flood_python(size)
    samples: dict[str, list[Transfer]] = {SERVER: [], FLOOR: []}
    began = time.monotonic()
    async with bench_server(server_env(SERVER_ID, pool=True)) as server:
        session = await Session.open(ctx.http, server.ws_url, keep_output=False)
        try:
            expected = {SERVER_ID: await idle_count(ctx.docker, SERVER_ID), BASELINE_OWNER: 0}
            for rep in range(reps):
                for mode in rotated((SERVER, FLOOR), rep):
                    await wait_settled(ctx.docker, expected)
                    transfer = await (
                        _through_server(session, source, size)
                        if mode == SERVER
                        else _through_engine(ctx, source, size)
                    )
                    samples[mode].append(transfer)
                    say(f"throughput: {mode} {transfer.mib_per_s:.0f} MiB/s ({rep + 1}/{reps})")
        finally:
            await session.close()
    table = _table(samples, size)
    result.tables.append(table)
    server_rate = Summary.of([t.mib_per_s for t in samples[SERVER]]).median
    floor_rate = Summary.of([t.mib_per_s for t in samples[FLOOR]]).median
    result.headline.append(
        f"throughput: server {server_rate:.0f} MiB/s, engine attach {floor_rate:.0f} MiB/s "
        f"(server ÷ engine = {fmt_ratio(ratio(server_rate, floor_rate))})"
    )
    result.data = {mode: [asdict(t) for t in runs] for mode, runs in samples.items()}
    result.seconds = time.monotonic() - began
    return result
