"""The CPU clock: the run stage's CPU time from cgroup readings, and when to read next."""

from __future__ import annotations

from ce_ws.protocol import Limit, Status
from ce_ws.runs.cpu_clock import MAX_SAMPLE_S, MIN_SAMPLE_S, CpuClock

MS = 1_000_000  # nanoseconds


def test_time_before_the_first_reading_is_not_the_programs() -> None:
    clock = CpuClock(limit_ms=1000, cpus=1.0)
    clock.read(5000 * MS)  # the launcher and the compiler, before the run stage
    clock.read(5900 * MS)
    assert clock.used_ns == 900 * MS and not clock.spent
    clock.read(6000 * MS)
    assert clock.spent


def test_reaching_the_limit_is_a_cpu_timeout() -> None:
    reason = CpuClock(limit_ms=10_000, cpus=1.0).reason()
    assert (reason.status, reason.limit) == (Status.TIMEOUT, Limit.CPU)
    assert reason.message == "the program used its 10 s of CPU time"


def test_a_missing_reading_changes_nothing() -> None:
    clock = CpuClock(limit_ms=100, cpus=1.0)
    clock.read(None)
    clock.read(1 * MS)
    clock.read(None)
    assert clock.used_ns == 0 and not clock.spent


def test_readings_come_when_the_budget_could_be_spent_at_the_earliest() -> None:
    clock = CpuClock(limit_ms=10_000, cpus=2.0)
    clock.read(0)
    assert clock.next_reading_s() == MAX_SAMPLE_S  # 5 s away at two CPUs: read once a second
    clock.read(9_000 * MS)
    assert clock.next_reading_s() == 0.5  # 1 s of CPU left, spent in 0.5 s at the earliest
    clock.read(9_999 * MS)
    assert clock.next_reading_s() == MIN_SAMPLE_S
