"""A run's output fanned out: any number of bounded viewers beside the owner who paces it.

The owner (the socket or REST call that started the run, a `Subscriber`) is
awaited for every frame by the run itself, so its pace is the program's pace:
that is the backpressure the contract promises. Every other subscriber (a
room's viewer) is held by a `Fanout`, which a tap beside the owner feeds
(tee.py): publishing only gathers what goes out, and one writer task hands
each frame (at most one per frame interval, its bytes built once) to every
viewer, written at once where the sink can take it. Publishing never waits
for a viewer:

- what a viewer's sink cannot take at once is queued, and sent by awaiting
  the sink in a task of that viewer's own until its queue is empty;
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
#: The longest the fan-out's writer holds the loop before it yields (the owner waits no longer).
_SLICE_S = 0.0005
#: How many viewers the writer serves between two looks at the clock.
_SLICE_CHECK = 8


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

    def send_now(self, message: ServerMessage) -> bool:
        """Hand `message` over without waiting if the sink can; False: await `send`."""

    def send_output_now(self, data: bytes, stream: StreamId) -> bool:
        """Hand output over without waiting if the sink can; False: await `send_output`."""


@dataclass(frozen=True, slots=True)
class ViewerBounds:
    """How much a viewer may fall behind before it is resynced, how long it may stall."""

    queue_bytes: int = 256 * 1024
    stall_s: float = 10.0
    #: The shortest time between two sends to one viewer: while output streams,
    #: what arrives meanwhile goes in the next frame, so hundreds of viewers
    #: take a bounded share of the loop and the presenter keeps its pace.
    frame_interval_s: float = 0.0
    #: The same while the program floods (a frame held more output than a
    #: replay): viewers then get a redrawn screen this often, not every frame.
    flood_frame_interval_s: float = 0.0


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
        """A terminal reset, then the kept output from its first whole line on (if any follows).

        Starting after a newline avoids opening mid escape sequence or mid
        character when the oldest output was cut.
        """
        kept = b"".join(self._chunks)
        if self._size >= self._max:
            _, newline, after = kept.partition(b"\n")
            # Unless its only line is the last: then that line, cut, is all there is.
            if newline and after:
                kept = after
        return TERMINAL_RESET + kept


_Item = ServerMessage | tuple[bytes, StreamId]
#: What redraws a viewer's screen (the items a resync queues), and the number
#: of the first frame it does not hold yet.
Replay = Callable[[], tuple[Sequence[_Item], int]]


def _weight(item: _Item) -> int:
    """Bytes an item holds in a queue: output as is, a message as its JSON (cached)."""
    return len(item[0]) if isinstance(item, tuple) else len(item.to_json())


class Viewer:
    """A subscriber that may fall behind: what its sink cannot take at once waits, bounded.

    The fan-out's writer hands each frame to every viewer (`take`); a sink that
    takes it without waiting (a socket whose transport is not paused) costs no
    task and no wake-up. What it cannot take at once is queued and sent by
    awaiting the sink, in a task of this viewer's own, until the queue is empty.
    """

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
        self._closing = False
        #: Frames before this one are in what it was given (its replay): skipped.
        self._first_frame = 0
        #: Awaits the sink for what it could not take at once; None while it takes frames.
        self._sender: asyncio.Task[None] | None = None
        #: The reader's last progress: bytes taken, and when they were (or when nothing waited).
        self._taken = 0
        self._progressed_at = time.monotonic()
        self.dropped: str | None = None

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def has_backlog(self) -> bool:
        """Items wait that no sender is taking care of: the writer's next round sends them."""
        return bool(self._queue) and self._sender is None and self.dropped is None

    def put(self, item: _Item) -> bool:
        """Queue one item; never waits. True: the viewer was too far behind, and resynced."""
        if self.dropped is not None or self._closing:
            return False
        size = _weight(item)
        if self._queued_bytes + size > self._bounds.queue_bytes:
            self.resync()
            return True
        self._queue.append(item)
        self._queued_bytes += size
        return False

    def take(self, number: int, frame: Sequence[_Item]) -> None:
        """Frame `number`: queued (bounded), then handed over as far as the sink takes it.

        A frame its replay holds already is skipped: it joined, or was
        resynced, after that frame was cut (even within it).
        """
        for item in frame:
            if number < self._first_frame:
                break
            self.put(item)
        self.flush()

    def resync(self) -> None:
        """Redraw from the replay buffer: on joining, or when asked."""
        self._queue.clear()
        self._queued_bytes = 0
        items, self._first_frame = self._replay()
        for item in items:
            self._queue.append(item)
            self._queued_bytes += _weight(item)

    def flush(self) -> None:
        """Hand the sink what it takes without waiting; the first item it refuses is awaited."""
        while self._queue and self._sender is None and self.dropped is None:
            item = self._next_item()
            try:
                taken = self._send_now(item)
            except (ConnectionError, RuntimeError) as exc:
                self.drop(f"went away ({exc})")
                return
            if not taken:
                self._sender = asyncio.create_task(self._send_awaited(item))

    def drop(self, why: str) -> None:
        """Stop delivering; `on_drop` tells the owner of the sink."""
        if self.dropped is not None:
            return
        self.dropped = why
        self._queue.clear()
        self._queued_bytes = 0
        if self._sender is not None and self._sender is not asyncio.current_task():
            self._sender.cancel()
        self._on_drop(why)

    async def aclose(self, timeout_s: float) -> None:
        """Deliver what is queued (bounded in time), then stop."""
        self._closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self.dropped is None and (self._queue or self._sender is not None):
                    self.flush()
                    if self._sender is not None:
                        await asyncio.wait([self._sender])
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender

    def check_stall(self, now: float) -> None:
        """Drop the viewer if its reader has taken nothing waiting for it within `stall_s`."""
        delivery = self._sink.delivery()
        waiting = delivery.waiting or self._sender is not None or bool(self._queue)
        if delivery.taken != self._taken or not waiting:
            self._taken = delivery.taken
            self._progressed_at = now
        elif now - self._progressed_at > self._bounds.stall_s:
            self.drop(f"took nothing of its frames for over {self._bounds.stall_s:g} s")

    async def _send_awaited(self, first: _Item) -> None:
        """Await the sink for `first`, then for the rest of the queue; then the writer takes over."""
        item: _Item | None = first
        try:
            while item is not None:
                await self._send(item)
                item = self._next_item() if self._queue and self.dropped is None else None
        except (ConnectionError, RuntimeError) as exc:
            self.drop(f"went away ({exc})")
        finally:
            self._sender = None

    def _next_item(self) -> _Item:
        """The oldest item; output queued behind it joins it in one frame.

        A viewer that fell behind takes all it missed in one send, not one per
        chunk: per byte, hundreds of viewers cost the loop (and so the
        presenter) far less.
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

    def _send_now(self, item: _Item) -> bool:
        if isinstance(item, tuple):
            return self._sink.send_output_now(*item)
        return self._sink.send_now(item)

    async def _send(self, item: _Item) -> None:
        if isinstance(item, tuple):
            await self._sink.send_output(*item)
        else:
            await self._sink.send(item)


def _frame(items: Sequence[_Item], max_output: int) -> tuple[list[_Item], bool]:
    """What a frame interval published, as few items as keep its order.

    Output of one stream in a row joins into one item, built once for every
    viewer. A stretch of output longer than `max_output` (a flood) becomes
    its own replay: a terminal reset and its last bytes from a whole line, so
    each viewer is handed at most a screenful per frame however fast the
    program writes. Also says whether that happened (the program floods).
    """
    frame: list[_Item] = []
    stretch: list[bytes] = []
    stream: StreamId = STDOUT
    flooded = False

    def close_stretch() -> None:
        nonlocal flooded
        if not stretch:
            return
        size = sum(len(chunk) for chunk in stretch)
        if size <= max_output:
            frame.append((b"".join(stretch), stream))
        else:
            flooded = True
            tail = ReplayBuffer(max_output)
            for chunk in stretch:
                tail.add(chunk)
            frame.append((tail.replay(), stream))
        stretch.clear()

    for item in items:
        if isinstance(item, tuple):
            if item[1] != stream:
                close_stretch()
                stream = item[1]
            stretch.append(item[0])
        else:
            close_stretch()
            frame.append(item)
    close_stretch()
    return frame, flooded


class Fanout:
    """Bounded viewers and the replay that redraws their screens; publishing never waits.

    Publishing only appends to the frame being gathered. One writer task per
    fan-out hands each frame (at most one per `frame_interval_s`) to every
    viewer in turn, and yields to the loop between slices of viewers, so the
    owner's own sends never wait behind hundreds of viewer writes for longer
    than `_SLICE_S`.

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
        #: Frames cut since the writer's last round (a viewer joined or was
        #: resynced: its replay holds what came before), with their numbers.
        self._frames: list[tuple[int, list[_Item]]] = []
        self._next_frame = 0
        #: What was published since the last frame was cut.
        self._gathered: list[_Item] = []
        #: Output bytes in `_gathered`: past a viewer's bound it is compacted (`_frame`).
        self._gathered_bytes = 0
        #: Whether output flooded in the frames cut since the writer's last round.
        self._flooded = False
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
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

        viewer = Viewer(sink, bounds=self._bounds, replay=self._viewer_replay, on_drop=dropped)
        self._viewers.add(viewer)
        viewer.resync()
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.create_task(self._sweep_stalled())
        return viewer

    def detach(self, viewer: Viewer) -> None:
        """Remove a viewer (idempotent); what it had queued is dropped."""
        if viewer in self._viewers:
            self._viewers.discard(viewer)
            viewer.drop("detached")

    def message(self, message: ServerMessage) -> None:
        """Gather a control message for each viewer."""
        if self._viewers:
            self._gathered.append(message)
            self._wake.set()

    def output(self, data: bytes, stream: StreamId) -> None:
        """Keep output for replays and gather it for each viewer."""
        self._buffer.add(data)
        if self._viewers:
            self._gathered.append((data, stream))
            self._gathered_bytes += len(data)
            if self._gathered_bytes > self._bounds.queue_bytes:
                self._compact_gathered()
            self._wake.set()

    async def aclose(self, timeout_s: float = 1.0) -> None:
        """Let viewers take what is gathered and queued (bounded), then stop them."""
        for task in (self._writer, self._sweep):
            if task is not None:
                task.cancel()
        frames, _ = self._take_frames()
        for viewer in self._viewers:
            for number, frame in frames:
                viewer.take(number, frame)
        viewers, self._viewers = list(self._viewers), set()
        await asyncio.gather(*(viewer.aclose(timeout_s) for viewer in viewers))

    def _viewer_replay(self) -> tuple[list[_Item], int]:
        """A viewer's replay, which holds all output published so far: it skips the frames cut."""
        self._cut_frame()
        return self.replay(), self._next_frame

    def _compact_gathered(self) -> None:
        """A flood between two rounds: what waits for them shrinks to its replay."""
        self._gathered, flooded = _frame(self._gathered, self._replay_bytes)
        self._flooded = self._flooded or flooded
        self._gathered_bytes = sum(len(i[0]) for i in self._gathered if isinstance(i, tuple))

    def _cut_frame(self) -> None:
        """What was gathered becomes the next frame."""
        if not self._gathered:
            return
        frame, flooded = _frame(self._gathered, self._replay_bytes)
        self._frames.append((self._next_frame, frame))
        self._next_frame += 1
        self._flooded = self._flooded or flooded
        self._gathered, self._gathered_bytes = [], 0

    def _take_frames(self) -> tuple[list[tuple[int, list[_Item]]], bool]:
        """The frames for a round, and whether output flooded in them."""
        self._cut_frame()
        frames, self._frames = self._frames, []
        flooded, self._flooded = self._flooded, False
        return frames, flooded

    async def _write(self) -> None:
        """Until the last viewer leaves: one round over the viewers per frame interval."""
        next_round = 0.0
        while self._viewers:
            await self._wake.wait()
            self._wake.clear()
            if (wait := next_round - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            frames, flooded = self._take_frames()
            interval = self._bounds.frame_interval_s
            if flooded:
                interval = max(interval, self._bounds.flood_frame_interval_s)
            next_round = time.monotonic() + interval
            viewers = list(self._viewers)
            slice_began = time.monotonic()
            for index, viewer in enumerate(viewers):
                for number, frame in frames:
                    viewer.take(number, frame)
                if viewer.has_backlog:
                    viewer.flush()
                if index % _SLICE_CHECK == 0 and time.monotonic() - slice_began > _SLICE_S:
                    # Let the owner's sends (and everything else) run.
                    await asyncio.sleep(0)
                    slice_began = time.monotonic()

    async def _sweep_stalled(self) -> None:
        """Until the last viewer leaves: drop the ones whose reader stalled."""
        while self._viewers:
            await asyncio.sleep(self._bounds.stall_s / 4)
            now = time.monotonic()
            for viewer in list(self._viewers):
                viewer.check_stall(now)
