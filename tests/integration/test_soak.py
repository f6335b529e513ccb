"""The soak (`python -m bench --only soak`), shortened: the same code, 1,000 runs of 10,000.

A real server process takes a seeded mix of runs through every surface, with
disconnects, kills, signals, floods and limits, 16 at a time; then nothing of
it may remain, every run must have ended as its case allows, and the server's
memory, descriptors and responsiveness must not have grown with the runs.

Memory is judged by what the server's Python heap holds after a full
garbage collection (`tests.traced_server` measures it with tracemalloc), not
by its RSS: over 300 runs RSS is mostly allocator warm-up (arenas and freed
blocks filling to the high-water mark of 16 live runs' buffers, and garbage
waiting for the collector's next full pass): its slope after the first third
was ~18 MiB per 1,000 runs from warm-up alone and 34-42 with closed
connections freed late (CI's 41.8 against a bound of 40), so a bound on it
told a leak from warm-up by chance. The
collected heap has no warm-up to speak of and no fragmentation: what it gains
per run is what the server keeps per run. RSS is still sampled, and reported.
What the heap cannot see (memory kept outside Python's allocator, or objects
freed late by a reference cycle) is for the full soak's RSS slope over
10,000 runs and for tests/integration/test_connection_cycles.py.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.client import http_client
from bench.engine import engine_client
from bench.server import MIB
from bench.soak import DEFAULT_SEED, least_squares_slope, soak
from ce_ws.config import Settings
from tests.leftovers import TEST_SERVER_ID

#: The issue's reduced soak: 300 runs took 41 s in `make test` on this 2-core
#: machine (16 at a time), so 1,000 take about two minutes and a half.
RUNS = 1000
#: Slopes leave out the first third (imports finishing, the pool filling, the
#: first compile cached). The collected Python heap after it: within 10 MiB per
#: 1,000 runs: a leak of 40 KiB a run is 39, four times the bound, while the
#: heap of a server that keeps nothing moves by the 16 live runs' state (a few
#: MiB up or down from sample to sample, not with the runs). Descriptors settle
#: within ~90 runs at 16 live runs' sockets (±10 from sample to sample): one
#: leaked per 50 runs would be 20. Ping: jitter under load is tens of ms; a
#: loop that slows with every run grows without bound.
WARMUP = 1 / 3
MAX_HEAP_MIB_PER_1000 = 10.0
MAX_FDS_PER_1000 = 20.0
#: Ping: the last third's median against the middle third's (a slope over so short a soak
#: multiplies load jitter); a loop that slows by 1 ms a run rises 100 ms between them.
MAX_PING_RISE_MS = 100.0


async def test_a_soak_leaves_nothing_and_nothing_grows(tmp_path: Path) -> None:
    async with engine_client() as docker, http_client() as http:
        report = await soak(
            docker,
            http,
            runs=RUNS,
            seed=DEFAULT_SEED,
            server_id=f"{TEST_SERVER_ID}-soak",
            pool=Settings().pool.enabled,
            module="tests.traced_server",
            heap_file=tmp_path / "python-heap",
        )
    assert sum(report.outcomes.values()) == RUNS
    assert not report.unexpected, f"runs ended otherwise than their case allows: {report.examples}"
    assert (report.leaked_containers, report.leaked_staging) == (0, 0)
    assert report.left_after_stop == 0
    assert report.tracebacks_in_log == 0
    assert len(report.samples) >= 5
    measured = [s for s in report.samples if s.runs >= RUNS * WARMUP]
    heaps: list[tuple[float, float]] = [
        (s.runs, s.python_heap_bytes / MIB) for s in measured if s.python_heap_bytes
    ]
    assert len(heaps) >= 5, "the server reported its Python heap too seldom"
    heap = least_squares_slope(heaps) * 1000
    rss = report.slope_per_1000(lambda s: s.rss_bytes / MIB, warmup=WARMUP)
    fds = report.slope_per_1000(lambda s: s.open_fds, warmup=WARMUP)
    pings = [sample.ping_ms for sample in report.samples]
    third = len(pings) // 3
    ping = statistics.median(pings[2 * third :]) - statistics.median(pings[third : 2 * third])
    assert heap <= MAX_HEAP_MIB_PER_1000, (
        f"the Python heap grows {heap:.1f} MiB per 1,000 runs (RSS {rss:.1f}): "
        "something is kept per run"
    )
    assert fds <= MAX_FDS_PER_1000, f"open descriptors grow {fds:.1f} per 1,000 runs"
    assert ping <= MAX_PING_RISE_MS, f"ping round trip rose {ping:.1f} ms in the last third"
