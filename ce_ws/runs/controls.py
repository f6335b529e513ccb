"""A run's pending control messages: bounded and coalescing, whatever the client sends.

A client can send signals and resizes far faster than the engine delivers
them (each SIGSTOP is a `docker exec`). The receive loop only posts them
here, never waiting; the run's one control task takes them out one at a
time. What waits is collapsed, as the kernel collapses pending signals:

- `Resize`: only the latest size counts;
- `Signal`: one already waiting is not queued twice; it moves to where it
  was last asked for, so STOP, CONT, STOP still ends stopped.

So at most one resize and one of each contract signal wait: the mailbox is
bounded by construction, and a client that leaves takes nothing with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

from ce_ws.errors import CeError, SandboxStopped
from ce_ws.sandbox.base import RunBox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Signal:
    """Deliver signal `name` to the program."""

    name: str

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Resize:
    """Set the program's terminal size."""

    cols: int
    rows: int
    key: ClassVar[str] = "resize"


Control = Signal | Resize


class ControlMailbox:
    """Pending controls in the order they were (last) asked for, one per key."""

    def __init__(self) -> None:
        self._pending: dict[str, Control] = {}
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, control: Control) -> None:
        """Post `control`, replacing a pending one of the same key; never waits."""
        self._pending.pop(control.key, None)
        self._pending[control.key] = control
        self._ready.set()

    def take(self) -> Control | None:
        """The oldest pending control, or None."""
        if not self._pending:
            return None
        control = self._pending.pop(next(iter(self._pending)))
        if not self._pending:
            self._ready.clear()
        return control

    async def get(self) -> Control:
        """Wait for the oldest pending control."""
        while (control := self.take()) is None:
            await self._ready.wait()
        return control


async def deliver_controls(
    mailbox: ControlMailbox,
    box: RunBox,
    *,
    live: asyncio.Event,
    ending: Callable[[], bool],
    refused: Callable[[CeError], Awaitable[None]],
) -> None:
    """A run's one control task: signals and resizes, one engine call at a time.

    Runs for as long as the box lives (compile stage included) and is
    cancelled with it: what is still pending dies with the run. Nothing is
    delivered before `live` is set (the compiler or the program runs): until
    then the box's only process is the launcher, whom a signal would kill.
    """
    while True:
        control = await mailbox.get()
        await live.wait()
        if ending():
            continue  # the kill makes every control moot
        try:
            if isinstance(control, Resize):
                await box.resize(control.cols, control.rows)
            else:
                await box.signal(control.name)
        except CeError as exc:
            log.info("%s not delivered: %s", control, exc.message)
            # Once the run ends, or its program has (the container stopped and
            # the exit is on its way), the engine failing is expected: nothing to tell.
            if not ending() and not isinstance(exc, SandboxStopped):
                await refused(exc)
        except Exception:
            # A bug must not end the run (or stop the next controls).
            log.exception("delivering %s failed", control)
