"""The control mailbox, the control budget, and a run's control task (pure logic only).

The proof against the real engine is tests/hostile/test_control_messages.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import get_args

import pytest

from ce_ws.errors import CeError, SandboxError, SandboxStopped
from ce_ws.protocol import Signal as SignalName
from ce_ws.protocol import Status
from ce_ws.runs.admission import TokenBucket
from ce_ws.runs.controls import ControlMailbox, Resize, Signal, deliver_controls
from tests.helpers import eventually
from tests.unit.test_run import RecordingBox, make_run

CONTRACT_SIGNALS: tuple[str, ...] = get_args(SignalName)


def drain(mailbox: ControlMailbox) -> list[Signal | Resize]:
    taken = []
    while (control := mailbox.take()) is not None:
        taken.append(control)
    return taken


def test_only_the_latest_resize_waits() -> None:
    mailbox = ControlMailbox()
    for cols in range(1, 1001):
        mailbox.put(Resize(cols, 24))
    assert drain(mailbox) == [Resize(1000, 24)]


def test_a_waiting_signal_is_not_queued_twice_and_moves_to_its_last_place() -> None:
    mailbox = ControlMailbox()
    for name in ["SIGSTOP", "SIGCONT"] * 5000 + ["SIGSTOP"]:
        mailbox.put(Signal(name))
    # The last request wins: the program ends stopped, as the client asked last.
    assert drain(mailbox) == [Signal("SIGCONT"), Signal("SIGSTOP")]


def test_order_of_different_controls_is_kept() -> None:
    mailbox = ControlMailbox()
    mailbox.put(Signal("SIGINT"))
    mailbox.put(Resize(100, 30))
    mailbox.put(Signal("SIGTERM"))
    assert drain(mailbox) == [Signal("SIGINT"), Resize(100, 30), Signal("SIGTERM")]


def test_the_mailbox_is_bounded_whatever_is_posted() -> None:
    mailbox = ControlMailbox()
    for round_ in range(1000):
        for name in CONTRACT_SIGNALS:
            mailbox.put(Signal(name))
        mailbox.put(Resize(1 + round_ % 500, 1 + round_ % 200))
    assert len(mailbox) == len(CONTRACT_SIGNALS) + 1


async def test_get_waits_for_a_post_and_takes_in_order() -> None:
    mailbox = ControlMailbox()
    getting = asyncio.create_task(mailbox.get())
    await asyncio.sleep(0)
    assert not getting.done()
    mailbox.put(Signal("SIGUSR1"))
    mailbox.put(Signal("SIGUSR2"))
    assert await asyncio.wait_for(getting, 1) == Signal("SIGUSR1")
    assert await asyncio.wait_for(mailbox.get(), 1) == Signal("SIGUSR2")
    assert mailbox.take() is None


def test_a_bucket_with_a_burst_allows_the_burst_then_its_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("ce_ws.runs.admission.time.monotonic", lambda: now[0])
    bucket = TokenBucket(20 * 60, burst=100)
    assert sum(bucket.take() for _ in range(500)) == 100
    now[0] += 1.0  # a second refills 20
    assert sum(bucket.take() for _ in range(500)) == 20
    now[0] += 3600  # never more than the burst
    assert sum(bucket.take() for _ in range(500)) == 100


class SlowSignalBox(RecordingBox):
    """A box whose signals take a while, like a `docker exec`; counts overlaps."""

    def __init__(self, events: list[str], *, signal_s: float) -> None:
        super().__init__(events, output=[], hang=True)
        self._signal_s = signal_s
        self.in_flight = 0
        self.most_in_flight = 0

    async def signal(self, name: str) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self._signal_s)
            await super().signal(name)
        finally:
            self.in_flight -= 1


async def test_the_run_delivers_a_flood_coalesced_one_engine_call_at_a_time() -> None:
    events: list[str] = []
    box = SlowSignalBox(events, signal_s=0.01)
    run = make_run("bash", box, events)
    task = asyncio.create_task(run.execute())
    await box.went.wait()
    for i in range(1000):
        await run.signal("SIGSTOP")  # none of these waits for the engine
        await run.signal("SIGCONT")
        run.resize(40 + i % 100, 24)
    run.resize(123, 45)
    for _ in range(500):  # the last control posted is the last delivered
        if "resize 123x45" in events:
            break
        await asyncio.sleep(0.01)
    await run.kill()
    assert (await task).status is Status.KILLED
    signals = [e for e in events if e.startswith("signal")]
    resizes = [e for e in events if e.startswith("resize")]
    assert signals[-2:] == ["signal SIGSTOP", "signal SIGCONT"] and len(signals) <= 4, signals
    assert resizes[-1] == "resize 123x45" and len(resizes) <= 4, resizes
    assert box.most_in_flight == 1


async def test_a_kill_never_waits_behind_a_control_stuck_in_the_engine() -> None:
    events: list[str] = []
    box = SlowSignalBox(events, signal_s=3600)
    run = make_run("bash", box, events)
    task = asyncio.create_task(run.execute())
    await box.went.wait()
    for _ in range(100):
        await run.signal("SIGSTOP")
        await run.signal("SIGTERM")
    await asyncio.sleep(0.01)
    assert box.in_flight == 1  # one signal stuck in the engine, one waiting
    await asyncio.wait_for(run.signal("SIGKILL"), 1)
    exit_message = await asyncio.wait_for(task, 1)
    assert exit_message.status is Status.KILLED
    assert box.in_flight == 0, "the stuck control outlived its run"
    assert not any(e.startswith("signal") for e in events)


async def test_a_resize_before_the_run_stage_is_its_starting_size() -> None:
    events: list[str] = []
    box = RecordingBox(events, output=[b"hi"])
    run = make_run("bash", box, events)
    run.resize(100, 30)  # still pending: nothing to post yet
    await run.execute()
    assert [e for e in events if e.startswith("resize")] == ["resize 100x30"]


class StoppedBox:
    """A box whose program has just ended: the engine refuses controls (409 not running)."""

    async def resize(self, cols: int, rows: int) -> None:
        raise SandboxStopped("container engine refused to resize the terminal: is not running")

    async def signal(self, name: str) -> None:
        raise SandboxError("container engine refused to send SIGINT: something else")


async def test_a_control_refused_because_the_program_just_ended_is_not_reported() -> None:
    """Its exit is on its way; an `internal` error before it would be a false alarm."""
    mailbox, live, refusals = ControlMailbox(), asyncio.Event(), []
    live.set()

    async def refused(exc: CeError) -> None:
        refusals.append(exc)

    task = asyncio.create_task(
        deliver_controls(mailbox, StoppedBox(), live=live, ending=lambda: False, refused=refused)  # type: ignore[arg-type]
    )
    mailbox.put(Resize(100, 30))
    mailbox.put(Signal("SIGINT"))
    await eventually(lambda: len(refusals) == 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert [type(exc) for exc in refusals] == [SandboxError]  # the signal's; the resize's not
