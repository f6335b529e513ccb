"""The soak (`python -m bench --only soak`), shortened: the same code, fewer runs.

A real server process takes a seeded mix of runs through every surface, with
disconnects, kills, signals, floods and limits, 16 at a time; then nothing of
it may remain, every run must have ended as its case allows, and the server's
memory, descriptors and responsiveness must not have grown with the runs.
"""

from __future__ import annotations

from bench.client import http_client
from bench.engine import engine_client
from bench.server import MIB
from bench.soak import DEFAULT_SEED, soak
from ce_ws.config import Settings
from tests.leftovers import TEST_SERVER_ID

#: The issue asks for 1,000; on this 2-core machine shared with other work a run
#: takes ~0.4 s of wall time at 16 at a time, so 1,000 would take ~7 minutes.
RUNS = 300
#: Bounds on the least-squares slopes per 1,000 runs (after the warm-up tenth).
#: RSS: a leak of one 16 KiB buffer per run would be 16 MiB; allocator noise is a
#: few MiB. Descriptors: one leaked per 100 runs would be 10, while 16 live runs
#: make the sampled count swing by ~±30, which a 300-run fit spreads to a few.
#: Ping: a loop that slows with every run; jitter under load is tens of ms.
MAX_RSS_MIB_PER_1000 = 16.0
MAX_FDS_PER_1000 = 10.0
MAX_PING_MS_PER_1000 = 100.0


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
    rss = report.slope_per_1000(lambda s: s.rss_bytes / MIB)
    fds = report.slope_per_1000(lambda s: s.open_fds)
    ping = report.slope_per_1000(lambda s: s.ping_ms)
    assert rss <= MAX_RSS_MIB_PER_1000, f"RSS grows {rss:.1f} MiB per 1,000 runs"
    assert fds <= MAX_FDS_PER_1000, f"open descriptors grow {fds:.1f} per 1,000 runs"
    assert ping <= MAX_PING_MS_PER_1000, f"ping round trip grows {ping:.1f} ms per 1,000 runs"
