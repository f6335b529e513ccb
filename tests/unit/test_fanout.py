"""The fan-out's promises: publishing never waits; a stalled viewer is bounded; a replay redraws."""

from __future__ import annotations

import asyncio
import time

from ce_ws.protocol import Pong
from ce_ws.runs.fanout import TERMINAL_RESET, Delivery, Fanout, ReplayBuffer, ViewerBounds
from ce_ws.types import STDOUT, StreamId
from tests.helpers import eventually
from tests.unit.sinks import Sink


def test_replay_keeps_the_last_bytes_from_a_whole_line() -> None:
    buffer = ReplayBuffer(16)
    buffer.add(b"old line one\r\n")
    buffer.add(b"second\r\nthird")
    replay = buffer.replay()
    assert replay.startswith(TERMINAL_RESET)
    # The window starts mid "old line one": it is cut after its first newline.
    assert replay == TERMINAL_RESET + b"second\r\nthird"


def test_replay_of_a_short_screen_is_everything() -> None:
    buffer = ReplayBuffer(1024)
    buffer.add(b"$ hello\r\n")
    assert buffer.replay() == TERMINAL_RESET + b"$ hello\r\n"


async def test_publishing_never_waits_for_a_stalled_viewer_which_stays_bounded() -> None:
    stalled = Sink()
    bounds = ViewerBounds(queue_bytes=4096, stall_s=60)
    fanout = Fanout(replay_bytes=1024, bounds=bounds)
    stalled.gate.clear()
    viewer = fanout.attach(stalled, on_drop=lambda why: None)
    chunk = b"y" * 1000
    for _ in range(1000):
        fanout.output(chunk, STDOUT)
    assert viewer.queued_bytes <= bounds.queue_bytes
    await fanout.aclose(timeout_s=0.1)


async def test_viewer_that_falls_behind_is_resynced_with_a_replay() -> None:
    slow = Sink()
    bounds = ViewerBounds(queue_bytes=100, stall_s=60)
    fanout = Fanout(replay_bytes=64, bounds=bounds)
    slow.gate.clear()
    fanout.attach(slow, on_drop=lambda why: None)
    for index in range(20):
        fanout.output(f"line {index:02}\n".encode(), STDOUT)
    slow.gate.set()
    await eventually(lambda: slow.output.endswith(b"line 19\n"))
    # What it got after falling behind starts with a reset: its screen is redrawn.
    assert TERMINAL_RESET in slow.output
    tail = slow.output.rsplit(TERMINAL_RESET, 1)[1]
    assert tail.endswith(b"line 19\n") and b"line 00" not in tail
    assert len(tail) <= 64 + bounds.queue_bytes  # one replay, then at most its bound
    await fanout.aclose()


async def test_viewer_far_behind_is_resynced_never_dropped_while_it_takes_frames() -> None:
    slow = Sink()
    bounds = ViewerBounds(queue_bytes=100, stall_s=60)
    fanout = Fanout(replay_bytes=64, bounds=bounds)
    slow.gate.clear()
    reasons: list[str] = []
    viewer = fanout.attach(slow, on_drop=reasons.append)
    for _ in range(50):
        fanout.output(b"z" * 30, STDOUT)
        assert viewer.queued_bytes <= bounds.queue_bytes
    slow.gate.set()
    fanout.output(b"end\r\n", STDOUT)
    await eventually(lambda: slow.output.endswith(b"end\r\n"))
    assert reasons == [] and fanout.viewers == 1
    await fanout.aclose()


async def test_viewer_stuck_in_one_send_is_dropped() -> None:
    stuck = Sink()
    fanout = Fanout(replay_bytes=1024, bounds=ViewerBounds(stall_s=0.05))
    stuck.gate.clear()
    reasons: list[str] = []
    fanout.attach(stuck, on_drop=reasons.append)
    await eventually(lambda: bool(reasons))
    assert "took nothing" in reasons[0]


class UnreadSocket(Sink):
    """Sends return at once (socket buffers take them), but its reader takes nothing."""

    def delivery(self) -> Delivery:
        return Delivery(waiting=bool(self.output), taken=0)


async def test_viewer_whose_reader_takes_nothing_is_dropped_though_its_sends_return() -> None:
    unread = UnreadSocket()
    fanout = Fanout(replay_bytes=1024, bounds=ViewerBounds(stall_s=0.05))
    reasons: list[str] = []
    fanout.attach(unread, on_drop=reasons.append)
    fanout.output(b"hello\r\n", STDOUT)
    await eventually(lambda: bool(reasons))
    assert "took nothing" in reasons[0] and fanout.viewers == 0


async def test_idle_viewer_with_nothing_waiting_is_never_dropped() -> None:
    idle = Sink()
    fanout = Fanout(replay_bytes=1024, bounds=ViewerBounds(stall_s=0.02))
    reasons: list[str] = []
    fanout.attach(idle, on_drop=reasons.append)
    await asyncio.sleep(0.2)
    assert reasons == [] and fanout.viewers == 1
    await fanout.aclose()


async def test_late_joiner_sees_the_current_screen_then_the_live_stream() -> None:
    late = Sink()
    fanout = Fanout(replay_bytes=1024)
    fanout.output(b"before\r\n", STDOUT)
    fanout.attach(late, on_drop=lambda why: None)
    fanout.output(b"after\r\n", STDOUT)
    fanout.message(Pong())
    await eventually(lambda: bool(late.messages))
    assert late.output == TERMINAL_RESET + b"before\r\nafter\r\n"
    assert late.messages == [Pong()]
    await fanout.aclose()


async def test_detached_viewer_gets_nothing_more() -> None:
    viewer_sink = Sink()
    fanout = Fanout(replay_bytes=1024)
    viewer = fanout.attach(viewer_sink, on_drop=lambda why: None)
    await eventually(lambda: viewer_sink.output == TERMINAL_RESET)
    fanout.detach(viewer)
    fanout.output(b"later", STDOUT)
    await asyncio.sleep(0.02)
    assert viewer_sink.output == TERMINAL_RESET


async def test_a_flood_reaches_a_viewer_as_its_redrawn_end_not_every_byte() -> None:
    watcher = Sink()
    bounds = ViewerBounds(queue_bytes=4096, frame_interval_s=0.01, flood_frame_interval_s=0.05)
    fanout = Fanout(replay_bytes=1024, bounds=bounds)
    fanout.attach(watcher, on_drop=lambda why: None)
    for index in range(1000):  # 10 kB, faster than any frame
        fanout.output(f"line {index:04}\n".encode(), STDOUT)
    await eventually(lambda: watcher.output.endswith(b"line 0999\n"))
    # Its joining replay (a reset), then the flood's own replay: a reset and at most 1 KiB.
    assert watcher.output.count(TERMINAL_RESET) == 2
    assert len(watcher.output) <= 2 * len(TERMINAL_RESET) + 1024
    await fanout.aclose()


class SlowSocket(Sink):
    """Takes each frame at once, but writing it costs the loop `cost_s` (a syscall, say)."""

    def __init__(self, ticks: list[int], cost_s: float) -> None:
        super().__init__()
        self._ticks = ticks
        self._cost_s = cost_s
        self.written_at_tick: list[int] = []

    def send_output_now(self, data: bytes, stream: StreamId) -> bool:
        began = time.perf_counter()
        while time.perf_counter() - began < self._cost_s:
            pass
        self.written_at_tick.append(self._ticks[0])
        return super().send_output_now(data, stream)


async def test_the_writer_yields_to_the_loop_between_slices_of_viewers() -> None:
    ticks = [0]

    async def tick() -> None:
        while True:
            await asyncio.sleep(0)
            ticks[0] += 1

    fanout = Fanout(replay_bytes=1024)
    sockets = [SlowSocket(ticks, cost_s=0.0002) for _ in range(64)]
    for socket in sockets:
        fanout.attach(socket, on_drop=lambda why: None)
    ticker = asyncio.create_task(tick())
    fanout.output(b"frame\r\n", STDOUT)
    await eventually(lambda: all(s.output.endswith(b"frame\r\n") for s in sockets))
    ticker.cancel()
    # 64 writes of 0.2 ms are one round; the loop ran other tasks within it.
    rounds = {s.written_at_tick[-1] for s in sockets}
    assert len(rounds) >= 4
    await fanout.aclose()


async def test_a_viewer_joining_mid_round_leaves_every_viewer_its_frames_once_in_order() -> None:
    fanout = Fanout(replay_bytes=1024)
    sockets = [SlowSocket([0], cost_s=0.0002) for _ in range(64)]
    for socket in sockets:
        fanout.attach(socket, on_drop=lambda why: None)
    await eventually(lambda: all(s.output == TERMINAL_RESET for s in sockets))
    fanout.output(b"one ", STDOUT)
    # The writer yields within its round: some viewers have the frame, some not yet.
    await eventually(lambda: any(s.output.endswith(b"one ") for s in sockets), every_s=0)
    assert not all(s.output.endswith(b"one ") for s in sockets)
    fanout.output(b"two ", STDOUT)
    late = Sink()
    fanout.attach(late, on_drop=lambda why: None)
    fanout.output(b"three", STDOUT)
    everyone = [*sockets, late]
    await eventually(lambda: all(s.output.endswith(b"three") for s in everyone))
    assert all(s.output == TERMINAL_RESET + b"one two three" for s in everyone)
    await fanout.aclose()
