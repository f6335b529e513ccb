"""The run stage's CPU time against its limit, from the box's cgroup samples.

Pure logic: the run's usage sampler feeds it each reading and sleeps as long
as it says. CPU time grows at most `cpus` seconds per second, so the next
reading is due when the budget left could be spent at the earliest: a
program waiting at a prompt is read once a second, a busy loop close to its
limit every few tens of milliseconds.
"""

from __future__ import annotations

from ce_ws.protocol import Limit, Status
from ce_ws.runs.outcome import EndReason

#: Readings are this far apart at least (each one reads a cgroup file) ...
MIN_SAMPLE_S = 0.02
#: ... and at most (the memory peak is read by the same sampler).
MAX_SAMPLE_S = 1.0


class CpuClock:
    """How much of `limit_ms` the run stage used, since the first reading."""

    def __init__(self, *, limit_ms: int, cpus: float) -> None:
        self._limit_ns = limit_ms * 1_000_000
        self._cpus = cpus
        self._start_ns: int | None = None
        self.used_ns = 0

    def read(self, cpu_ns: int | None) -> None:
        """A reading of the box's whole CPU time; the first one is the stage's start.

        The box's time before the run stage (its launcher, the compiler) is
        not the program's. A missing reading (no cgroup file) changes nothing.
        """
        if cpu_ns is None:
            return
        if self._start_ns is None:
            self._start_ns = cpu_ns
        self.used_ns = max(self.used_ns, cpu_ns - self._start_ns)

    @property
    def spent(self) -> bool:
        return self.used_ns >= self._limit_ns

    def next_reading_s(self) -> float:
        """How long until the limit could be reached at the earliest."""
        left_s = (self._limit_ns - self.used_ns) / 1e9 / self._cpus
        return min(max(left_s, MIN_SAMPLE_S), MAX_SAMPLE_S)

    def reason(self) -> EndReason:
        """Why the run ends once `spent`."""
        return EndReason(
            Status.TIMEOUT,
            f"the program used its {self._limit_ns / 1e9:g} s of CPU time",
            Limit.CPU,
        )
