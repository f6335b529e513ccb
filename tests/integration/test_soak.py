"""The soak (`python -m bench --only soak`), shortened: the same code, fewer runs.

A real server process takes a seeded mix of runs through every surface, with
disconnects, kills, signals, floods and limits, 16 at a time; then nothing of
it may remain, every run must have ended as its case allows, and the server's
memory, descriptors and responsiveness must not have grown with the runs.
"""

from __future__ import annotations

import statistics

from bench.client import http_client
from bench.engine import engine_client
from bench.server import MIB
from bench.soak import DEFAULT_SEED, soak
from ce_ws.config import Settings
from tests.leftovers import TEST_SERVER_ID

#: The issue asks for 1,000; on this 2-core machine shared with other work a run
#: takes ~0.4 s of wall time at 16 at a time, so 1,000 would take ~7 minutes.
RUNS = 300
#: A short soak is all warm-up for memory: in the 2,000-run soak (docs/benchmarks.md)
#: RSS rose 56 → 72 MiB over the first ~600 runs (allocator arenas and caches
#: filling to 16 live runs' high-water mark), then 1 MiB over the next 1,400. So
#: here, after the first third: RSS within 40 MiB per 1,000 runs (the warm-up's
#: own ~20; a 40 KiB leak per run fails it). Descriptors settle within ~90 runs
#: at 16 live runs' sockets (±10 from sample to sample): one leaked per 50 runs
#: would be 20. Ping: jitter under load is tens of ms; a loop that slows with
#: every run grows without bound.
WARMUP = 1 / 3
MAX_RSS_MIB_PER_1000 = 40.0
MAX_FDS_PER_1000 = 20.0
#: Ping: the last third's median against the middle third's (a slope over so short a soak
#: multiplies load jitter); a loop that slows by 1 ms a run rises 100 ms between them.
MAX_PING_RISE_MS = 100.0


async def test_a_soak_leaves_nothing_and_nothing_grows() -> None:
    async with engine_client() as docker, http_client() as http:
        report = await soak(
            docker,
            http,
            runs=RUNS,
            seed=DEFAULT_SEED,
            server_id=f"{TEST_SERVER_ID}-soak",
            pool=Settings().pool.enabled,
            module="tests.spec_recorder",
        )
    assert sum(report.outcomes.values()) == RUNS
    assert not report.unexpected, f"runs ended otherwise than their case allows: {report.examples}"
    assert (report.leaked_containers, report.leaked_staging) == (0, 0)
    assert report.left_after_stop == 0
    assert report.tracebacks_in_log == 0
    assert len(report.samples) >= 5
    rss = report.slope_per_1000(lambda s: s.rss_bytes / MIB, warmup=WARMUP)
    fds = report.slope_per_1000(lambda s: s.open_fds, warmup=WARMUP)
    pings = [sample.ping_ms for sample in report.samples]
    third = len(pings) // 3
    ping = statistics.median(pings[2 * third :]) - statistics.median(pings[third : 2 * third])
    assert rss <= MAX_RSS_MIB_PER_1000, f"RSS grows {rss:.1f} MiB per 1,000 runs"
    assert fds <= MAX_FDS_PER_1000, f"open descriptors grow {fds:.1f} per 1,000 runs"
    assert ping <= MAX_PING_RISE_MS, f"ping round trip rose {ping:.1f} ms in the last third"
