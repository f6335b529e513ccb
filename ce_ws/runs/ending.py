"""How a run ends: the first recorded reason wins, and what waits gives way to it.

Whatever ends a run (a watchdog, the output cap, the client, the engine)
records its `EndReason` here before it kills, so the classification uses
ours, not the exit code. Waiting on the client (its backpressure, a full
stdin queue) gives way once the run is ending, and the output of an ending
run is drained for a bounded time only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from ce_ws.runs.outcome import EndReason

log = logging.getLogger(__name__)

T = TypeVar("T")

# Once a run is ending (killed), how long its output may take to end. The
# engine normally closes the stream at once; with the program's input backed
# up (a raw terminal that never reads, a client flooding stdin) it has kept
# it open for minutes, holding the run past its deadline.
DRAIN_AFTER_END_S = 2.0


class Ending:
    """The run's end reason, the event that it is ending, and the drain's deadline."""

    def __init__(self) -> None:
        self.reason: EndReason | None = None
        self._event = asyncio.Event()
        self._drain: asyncio.Timeout | None = None

    @property
    def is_set(self) -> bool:
        """Whether the run is ending (a reason is recorded, or it is over)."""
        return self._event.is_set()

    def record(self, reason: EndReason) -> bool:
        """Record why the run ends; the first reason wins. True if this one did."""
        if self.reason is not None:
            return False
        self.reason = reason
        self._event.set()
        if self._drain is not None:
            self._drain.reschedule(asyncio.get_running_loop().time() + DRAIN_AFTER_END_S)
        return True

    def finish(self) -> None:
        """The run is over (with or without a reason): nothing waits any more."""
        self._event.set()

    async def unless_ending(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Await `work` unless the run starts ending first (then drop it: None)."""
        task = asyncio.ensure_future(work)
        if self._event.is_set():
            task.cancel()
            return None
        ending = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, ending}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
            if not task.done():
                task.cancel()
        return task.result() if task.done() and not task.cancelled() else None

    @contextlib.asynccontextmanager
    async def bounded_drain(self, what: str) -> AsyncIterator[None]:
        """No deadline while the run goes; `DRAIN_AFTER_END_S` once it is ending."""
        try:
            async with asyncio.timeout(None) as self._drain:
                if self.reason is not None:
                    self._drain.reschedule(asyncio.get_running_loop().time() + DRAIN_AFTER_END_S)
                yield
        except TimeoutError:
            if self._drain is None or not self._drain.expired():
                raise
            log.warning("%s still open after its end; not waiting", what)
        finally:
            self._drain = None
