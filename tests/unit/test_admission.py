"""Admission order, caps, the bounded line, and the per-client rate limit."""

from __future__ import annotations

import asyncio

import pytest

from ce_ws.config import CapacitySettings
from ce_ws.errors import Busy, RateLimited
from ce_ws.runs import admission as admission_module
from ce_ws.runs.admission import Admission, RateLimiter


async def never_queued(position: int) -> None:
    raise AssertionError(f"queued at {position}")


async def test_slots_are_granted_in_arrival_order_within_caps() -> None:
    admission = Admission(CapacitySettings(max_runs=1, max_queue=5))
    events: list[str] = []
    positions: list[int] = []

    async def run(name: str, hold: asyncio.Event) -> None:
        async def queued(position: int) -> None:
            positions.append(position)

        async with admission.slot(name, on_queued=queued):
            events.append(name)
            await hold.wait()

    holds = [asyncio.Event() for _ in range(3)]
    tasks = [asyncio.create_task(run(f"c{i}", holds[i])) for i in range(3)]
    await asyncio.sleep(0.01)
    assert events == ["c0"] and positions == [1, 2] and admission.queued == 2
    for hold in holds:
        hold.set()
    await asyncio.gather(*tasks)
    assert events == ["c0", "c1", "c2"] and admission.active == 0


async def test_full_line_raises_busy() -> None:
    admission = Admission(CapacitySettings(max_runs=1, max_queue=0))
    async with admission.slot("a", on_queued=never_queued):
        with pytest.raises(Busy):
            async with admission.slot("b", on_queued=never_queued):
                pass
    assert admission.active == 0


async def test_per_client_cap_lets_other_clients_pass() -> None:
    admission = Admission(CapacitySettings(max_runs=4, max_runs_per_client=1, max_queue=4))
    waiting = asyncio.Event()

    async def queued(position: int) -> None:
        waiting.set()

    async with admission.slot("a", on_queued=never_queued):
        blocked = asyncio.create_task(admission.slot("a", on_queued=queued).__aenter__())
        await waiting.wait()
        async with admission.slot("b", on_queued=never_queued):
            assert admission.active == 2
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
    assert admission.active == 0 and admission.queued == 0


class Runs:
    """Runs held in their slots until released, each recording whether it waited."""

    def __init__(self, admission: Admission) -> None:
        self.admission = admission
        self.queued: dict[str, int] = {}
        self.running: set[str] = set()
        self._release: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, name: str, client: str) -> None:
        """Ask for a slot as `client`; returns once it runs, waits in line, or is refused."""
        self._release[name] = asyncio.Event()
        self._tasks[name] = asyncio.create_task(self._hold(name, client))
        await asyncio.sleep(0.01)

    async def _hold(self, name: str, client: str) -> None:
        async def queued(position: int) -> None:
            self.queued[name] = position

        async with self.admission.slot(client, on_queued=queued):
            self.running.add(name)
            await self._release[name].wait()
        self.running.discard(name)

    def refused(self, name: str) -> bool:
        task = self._tasks[name]
        return task.done() and isinstance(task.exception(), Busy)

    async def release(self, name: str) -> None:
        self._release[name].set()
        await asyncio.sleep(0.01)

    async def finish(self) -> None:
        for event in self._release.values():
            event.set()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)


async def test_a_clients_runs_beyond_its_cap_take_no_place_in_the_shared_line() -> None:
    """Client a's extra waits for a's own slot; the shared line stays for c, who waits for any."""
    admission = Admission(CapacitySettings(max_runs=2, max_runs_per_client=1, max_queue=1))
    runs = Runs(admission)
    await runs.start("a1", "a")
    await runs.start("a2", "a")  # a is at its cap
    await runs.start("b1", "b")  # a slot is free: b runs at once
    await runs.start("c1", "c")  # every slot taken: c waits in the shared line
    assert runs.running == {"a1", "b1"} and set(runs.queued) == {"a2", "c1"}
    await runs.start("d1", "d")  # the one shared place is c's
    assert runs.refused("d1")
    await runs.release("b1")  # the free slot goes to c: a is still at its cap
    assert runs.running == {"a1", "c1"}
    await runs.release("a1")
    assert runs.running == {"a2", "c1"}
    await runs.finish()
    assert admission.active == 0 and admission.queued == 0


async def test_a_clients_own_line_is_bounded_by_max_queue_per_client() -> None:
    admission = Admission(
        CapacitySettings(max_runs=4, max_runs_per_client=1, max_queue=1, max_queue_per_client=2)
    )
    runs = Runs(admission)
    for name in ("a1", "a2", "a3", "a4"):
        await runs.start(name, "a")
    assert runs.running == {"a1"} and set(runs.queued) == {"a2", "a3"}
    assert runs.refused("a4")  # a's own line is full; the shared line is empty
    await runs.start("b1", "b")
    assert "b1" in runs.running
    await runs.finish()
    assert admission.active == 0 and admission.queued == 0


def test_rate_limiter_refuses_past_the_budget() -> None:
    limiter = RateLimiter(per_minute=2)
    limiter.check("a")
    limiter.check("a")
    with pytest.raises(RateLimited):
        limiter.check("a")
    limiter.check("b")


def test_a_refusal_budget_is_checked_without_spending_and_spent_by_refusals() -> None:
    refusals = RateLimiter(per_minute=2, events="refused requests")
    refusals.check_left("a")
    refusals.check_left("a")  # checking takes nothing
    refusals.spend("a")
    refusals.spend("a")
    refusals.spend("a")  # past the budget: nothing left to take, no error
    with pytest.raises(RateLimited, match="more than 2 refused requests a minute"):
        refusals.check_left("a")
    refusals.check_left("b")


def test_rate_limiter_forgets_clients_whose_bucket_refilled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(admission_module.time, "monotonic", lambda: clock[0])
    limiter = RateLimiter(per_minute=1)
    for n in range(2000):
        limiter.check(f"client-{n}")
    with pytest.raises(RateLimited):
        limiter.check("client-7")  # still remembered: its bucket is empty
    clock[0] += 61
    for n in range(2100):  # the table outgrows its threshold again: a prune
        limiter.check(f"late-{n}")
    assert not any(key.startswith("client-") for key in limiter._buckets)
    assert len(limiter._buckets) == 2100
    limiter.check("client-7")  # a forgotten client starts with a full bucket
