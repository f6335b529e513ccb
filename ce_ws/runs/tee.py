"""A run's owner with taps beside it: a room's viewers, a recorder.

The owner (the presenter's socket) is awaited for every frame, as ever; each
tap is told first and never waits (a room queues for its viewers, a
recorder writes to its file). So taps see exactly what the owner sees, in
its order, and never pace the program.
"""

from __future__ import annotations

from typing import Protocol

from ce_ws.protocol import Exit, ServerMessage
from ce_ws.runs.fanout import Subscriber
from ce_ws.types import StreamId


class Tap(Protocol):
    """Sees a run as its owner does; every method returns at once."""

    def message(self, message: ServerMessage) -> None:
        """A control message (`started`, `stage`, `exit`...)."""

    def output(self, data: bytes, stream: StreamId) -> None:
        """Output bytes, as the owner gets them."""

    def resize(self, cols: int, rows: int) -> None:
        """The owner's terminal size (at the start, then at each `resize`)."""

    def ended(self) -> None:
        """The run is over, `exit` told or not (it never started, the owner left)."""


class Tee:
    """The owner of a run, awaited, with taps told first.

    `recording` is the run's recording URL, put into its `exit`.
    """

    def __init__(self, owner: Subscriber, taps: list[Tap], *, recording: str | None) -> None:
        self._owner = owner
        self._taps = taps
        self._recording = recording
        self._ended = False

    async def send(self, message: ServerMessage) -> None:
        await self._owner.send(self._tell(message))

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        for tap in self._taps:
            tap.output(data, stream)
        await self._owner.send_output(data, stream)

    def resize(self, cols: int, rows: int) -> None:
        """The owner's terminal changed size."""
        for tap in self._taps:
            tap.resize(cols, rows)

    def ended(self, exit_message: Exit | None) -> None:
        """The run is over: taps that missed its `exit` (the owner left) get it now."""
        if not self._ended and exit_message is not None:
            self._tell(exit_message)
        self._ended = True
        taps, self._taps = self._taps, []
        for tap in taps:
            tap.ended()

    def _tell(self, message: ServerMessage) -> ServerMessage:
        if isinstance(message, Exit):
            if self._ended:
                return message
            self._ended = True
            if self._recording is not None:
                message = message.model_copy(update={"recording": self._recording})
        for tap in self._taps:
            tap.message(message)
        return message
