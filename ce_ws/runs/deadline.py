"""The run stage's two clocks, wall and idle, in one object on the monotonic clock."""

from __future__ import annotations

import asyncio
import time

from ce_ws.runs.outcome import IDLE_TIMEOUT, WALL_TIMEOUT, EndReason


class Deadline:
    """Wall clock from `start()`; idle clock from the last `touch()` (input or output)."""

    def __init__(self, *, wall_s: float, idle_s: float) -> None:
        self._wall_s = wall_s
        self._idle_s = idle_s
        self.began = self.last_activity = time.monotonic()

    def start(self) -> None:
        """The program starts now: both clocks start."""
        self.began = self.last_activity = time.monotonic()

    def touch(self) -> None:
        """Input or output happened: the idle clock starts again."""
        self.last_activity = time.monotonic()

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.began) * 1000)

    def wall_remaining_s(self) -> float:
        return max(self._wall_s - (time.monotonic() - self.began), 0.0)

    async def passed(self) -> EndReason:
        """Sleep until one clock runs out; say which (`timeout` or `idle_timeout`)."""
        while True:
            now = time.monotonic()
            wall_left = self._wall_s - (now - self.began)
            idle_left = self._idle_s - (now - self.last_activity)
            if wall_left <= 0:
                return WALL_TIMEOUT
            if idle_left <= 0:
                return IDLE_TIMEOUT
            await asyncio.sleep(min(wall_left, idle_left))
