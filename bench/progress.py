"""Progress lines on stderr while a benchmark runs (the tables go to stdout)."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def say(message: str) -> None:
    """One progress line, stamped with the time since the benchmarks began."""
    elapsed = time.monotonic() - _START
    print(f"[bench {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)


class Ticker:
    """Reports `done/total` at most every `every_s` seconds, and at the end."""

    def __init__(self, label: str, total: int, *, every_s: float = 5.0) -> None:
        self._label = label
        self._total = total
        self._every_s = every_s
        self._done = 0
        self._last = time.monotonic()

    def tick(self, count: int = 1) -> None:
        """Count finished work; prints when enough time has passed."""
        self._done += count
        now = time.monotonic()
        if now - self._last >= self._every_s or self._done == self._total:
            self._last = now
            say(f"{self._label}: {self._done}/{self._total}")
