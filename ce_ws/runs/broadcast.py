"""A run's output as a broadcast: one owner who paces it, any number of bounded viewers.

The owner (the socket or REST call that started the run) is awaited for every
frame, so its pace is the program's pace: that is the backpressure the
contract promises. Every other subscriber (a room's viewer) gets its own
bounded queue and sender task, held by a `Fanout`. Publishing never waits
for a viewer:

- a viewer whose queue passes its byte bound (output and control messages
  alike) is *resynced*: its queue is dropped and replaced by one replay (the
  fan-out's greeting, a terminal reset and the recent output), which redraws
  its screen once it catches up;
- a viewer whose reader has taken nothing of what waits for it for longer
  than its stall limit (it reads nothing) is *dropped*: its `on_drop` says
  why (a room closes it 1013). One that reads, however slowly, is resynced as
  often as it falls behind. The sink says how much its reader took
  (`ViewerSink.delivery`); a socket's sink asks the kernel, since the bytes
  a stalled reader never takes wait in socket buffers, not in a send.

So a viewer can never slow the program, the owner or another viewer, and
never holds more than its bound in server memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ce_ws.protocol import ServerMessage
from ce_ws.types import STDOUT, StreamId

log = logging.getLogger(__name__)

#: ESC c: a full terminal reset, so a replay draws on a clean screen.
TERMINAL_RESET = b"\x1bc"


class Subscriber(Protocol):
    """Receives a run's control messages and output, in order."""

    async def send(self, message: ServerMessage) -> None:
        """One control message (`started`, `stage`, `exit`...)."""

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        """Output bytes; for the owner, awaiting this is the program's backpressure."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How far a viewer's reader has got with what was handed to its sink."""

    #: Bytes handed over are still waiting for the reader.
    waiting: bool
    #: Bytes the reader has taken so far; only ever grows.
    taken: int


class ViewerSink(Subscriber, Protocol):
    """A viewer's subscriber, which can tell whether its reader keeps up."""

    def delivery(self) -> Delivery:
        """What the reader has taken, and whether more waits for it."""


@dataclass(frozen=True, slots=True)
class ViewerBounds:
    """How much a viewer may fall behind before it is resynced, how long it may stall."""

    queue_bytes: int = 256 * 1024
    stall_s: float = 10.0
    #: The shortest time between two sends to one viewer: while output streams,
    #: what arrives meanwhile goes in the next frame, so hundreds of viewers
    #: take a bounded share of the loop and the presenter keeps its pace.
    frame_interval_s: float = 0.0


class ReplayBuffer:
    """The most recent output, at most `max_bytes`, to redraw a late viewer's screen."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def add(self, data: bytes) -> None:
        """Keep `data`; forget the oldest output beyond the bound."""
        if self._max <= 0:
            return
        self._chunks.append(data[-self._max :])
        self._size += len(self._chunks[-1])
        while self._size > self._max:
            extra = self._size - self._max
            first = self._chunks[0]
            if len(first) <= extra:
                self._chunks.popleft()
                self._size -= len(first)
            else:
                self._chunks[0] = first[extra:]
                self._size -= extra

    def replay(self) -> bytes:
        """A terminal reset, then the kept output from its first whole line on.

        Starting after a newline avoids opening mid escape sequence or mid
        character when the oldest output was cut.
        """
        kept = b"".join(self._chunks)
        if self._size >= self._max and b"\n" in kept:
            kept = kept.split(b"\n", 1)[1]
        return TERMINAL_RESET + kept


_Item = ServerMessage | tuple[bytes, StreamId]
#: What redraws a viewer's screen: the items a resync queues.
Replay = Callable[[], Sequence[_Item]]


def _weight(item: _Item) -> int:
    """Bytes an item holds in a queue: output as is, a message as its JSON (cached)."""
    return len(item[0]) if isinstance(item, tuple) else len(item.to_json())


class Viewer:
    """A subscriber that may fall behind: a bounded queue drained by its own task."""

    def __init__(
        self,
        sink: ViewerSink,
        *,
        bounds: ViewerBounds,
        replay: Replay,
        on_drop: Callable[[str], None],
    ) -> None:
        self._sink = sink
        self._bounds = bounds
        self._replay = replay
        self._on_drop = on_drop
        self._queue: deque[_Item] = deque()
        self._queued_bytes = 0
        self._ready = asyncio.Event()
        self._closing = False
        self._last_send = 0.0
        self._sending = False
        #: The reader's last progress: bytes taken, and when they were (or when nothing waited).
        self._taken = 0
        self._progressed_at = time.monotonic()
        self.dropped: str | None = None
        self._task = asyncio.create_task(self._deliver())

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def put(self, item: _Item) -> None:
        """Queue one item; never waits (a viewer too far behind is resynced)."""
        if self.dropped is not None or self._closing:
            return
        size = _weight(item)
        if self._queued_bytes + size > self._bounds.queue_bytes:
            self.resync()
            return
        self._queue.append(item)
        self._queued_bytes += size
        self._ready.set()

    def resync(self) -> None:
        """Redraw from the replay buffer: on joining, or when asked."""
        self._queue.clear()
        self._queued_bytes = 0
        for item in self._replay():
            self._queue.append(item)
            self._queued_bytes += _weight(item)
        self._ready.set()

    def drop(self, why: str) -> None:
        """Stop delivering; `on_drop` tells the owner of the sink."""
        if self.dropped is not None:
            return
        self.dropped = why
        self._queue.clear()
        self._queued_bytes = 0
        self._task.cancel()
        self._on_drop(why)

    async def aclose(self, timeout_s: float) -> None:
        """Deliver what is queued (bounded in time), then stop."""
        self._closing = True
        self._ready.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._task)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task

    async def _deliver(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            wait = self._last_send + self._bounds.frame_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            item = self._next_item()
            self._last_send = time.monotonic()
            self._sending = True
            try:
                await self._send(item)
            except (ConnectionError, RuntimeError) as exc:
                self.drop(f"went away ({exc})")
                return
            finally:
                self._sending = False

    def check_stall(self, now: float) -> None:
        """Drop the viewer if its reader has taken nothing waiting for it within `stall_s`."""
        delivery = self._sink.delivery()
        if delivery.taken != self._taken or not (delivery.waiting or self._sending):
            self._taken = delivery.taken
            self._progressed_at = now
        elif now - self._progressed_at > self._bounds.stall_s:
            self.drop(f"took nothing of its frames for over {self._bounds.stall_s:g} s")

    def _next_item(self) -> _Item:
        """The oldest item; output queued behind it joins it in one frame.

        A viewer that fell behind while the loop was busy then takes all it
        missed in one send, not one per chunk: per byte, hundreds of viewers
        cost the loop (and so the presenter) far less.
        """
        item = self._queue.popleft()
        self._queued_bytes -= _weight(item)
        if not isinstance(item, tuple) or not self._queue:
            return item
        chunks, stream = [item[0]], item[1]
        while self._queue and isinstance(head := self._queue[0], tuple) and head[1] == stream:
            self._queue.popleft()
            self._queued_bytes -= len(head[0])
            chunks.append(head[0])
        return (b"".join(chunks), stream) if len(chunks) > 1 else item

    async def _send(self, item: _Item) -> None:
        if isinstance(item, tuple):
            await self._sink.send_output(*item)
        else:
            await self._sink.send(item)


class Fanout:
    """Bounded viewers and the replay that redraws their screens; publishing never waits.

    `greeting` gives the messages that open every replay (a room's current
    state), so a resynced viewer redraws all it shows, not only the terminal.
    """

    def __init__(
        self,
        *,
        replay_bytes: int,
        bounds: ViewerBounds | None = None,
        greeting: Callable[[], list[ServerMessage]] | None = None,
    ) -> None:
        self._bounds = bounds or ViewerBounds()
        self._replay_bytes = replay_bytes
        self._buffer = ReplayBuffer(replay_bytes)
        self._greeting = greeting
        #: Whether the replay redraws a terminal (else it is the greeting alone).
        self.replays_output = True
        self._viewers: set[Viewer] = set()
        #: Checks every viewer for a stall while there are viewers: one timer, not one a send.
        self._sweep: asyncio.Task[None] | None = None

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    def replay(self) -> list[_Item]:
        """The greeting, then a terminal reset and the recent output."""
        items: list[_Item] = list(self._greeting()) if self._greeting else []
        if self.replays_output:
            items.append((self._buffer.replay(), STDOUT))
        return items

    def clear_replay(self) -> None:
        """A new screen (a new run): forget the old output."""
        self._buffer = ReplayBuffer(self._replay_bytes)

    def attach(self, sink: ViewerSink, *, on_drop: Callable[[str], None]) -> Viewer:
        """Add a viewer; it starts with a replay of the current screen."""

        def dropped(why: str) -> None:
            self._viewers.discard(viewer)
            on_drop(why)

        viewer = Viewer(sink, bounds=self._bounds, replay=self.replay, on_drop=dropped)
        self._viewers.add(viewer)
        viewer.resync()
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.create_task(self._sweep_stalled())
        return viewer

    async def _sweep_stalled(self) -> None:
        """Until the last viewer leaves: drop the ones whose reader stalled."""
        while self._viewers:
            await asyncio.sleep(self._bounds.stall_s / 4)
            now = time.monotonic()
            for viewer in list(self._viewers):
                viewer.check_stall(now)

    def detach(self, viewer: Viewer) -> None:
        """Remove a viewer (idempotent); what it had queued is dropped."""
        if viewer in self._viewers:
            self._viewers.discard(viewer)
            viewer.drop("detached")

    def message(self, message: ServerMessage) -> None:
        """Queue a control message for each viewer."""
        for viewer in list(self._viewers):
            viewer.put(message)

    def output(self, data: bytes, stream: StreamId) -> None:
        """Keep output for replays and queue it for each viewer."""
        self._buffer.add(data)
        for viewer in list(self._viewers):
            viewer.put((data, stream))

    async def aclose(self, timeout_s: float = 1.0) -> None:
        """Let viewers take what is queued (bounded), then stop them."""
        viewers, self._viewers = list(self._viewers), set()
        if self._sweep is not None:
            self._sweep.cancel()
        await asyncio.gather(*(viewer.aclose(timeout_s) for viewer in viewers))


class Broadcast:
    """The run's output: its owner awaited, its viewers fanned out beside it."""

    def __init__(
        self, owner: Subscriber, *, replay_bytes: int, bounds: ViewerBounds | None = None
    ) -> None:
        self.owner = owner
        self._fanout = Fanout(replay_bytes=replay_bytes, bounds=bounds)

    @property
    def viewers(self) -> int:
        return self._fanout.viewers

    def attach(self, sink: ViewerSink, *, on_drop: Callable[[str], None]) -> Viewer:
        """Add a viewer; it starts with a replay of the current screen."""
        return self._fanout.attach(sink, on_drop=on_drop)

    def detach(self, viewer: Viewer) -> None:
        """Remove a viewer (idempotent); what it had queued is dropped."""
        self._fanout.detach(viewer)

    async def message(self, message: ServerMessage) -> None:
        """A control message: queued for each viewer, then sent to the owner."""
        self._fanout.message(message)
        await self.owner.send(message)

    async def output(self, data: bytes, stream: StreamId) -> None:
        """Output: kept for replays, queued for each viewer, then awaited by the owner."""
        self._fanout.output(data, stream)
        await self.owner.send_output(data, stream)

    async def aclose(self, timeout_s: float = 1.0) -> None:
        """After the run: let viewers take what is queued (bounded), then stop them."""
        await self._fanout.aclose(timeout_s)
