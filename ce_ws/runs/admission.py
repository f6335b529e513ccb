"""Admission: a global cap on concurrent runs, a per-client cap, bounded lines.

A run that waits for any free slot takes a place in the shared line
(`max_queue`); one that waits only for its own client's cap takes a place in
that client's line (`max_queue_per_client`), so one address's extra runs
never fill the line others need while slots are free.

`Admission.slot()` is entered by every run before its container exists;
`ClientConnections.hold()` by every WebSocket for its whole life, and by
every other HTTP request while it is handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from ce_ws.config import CapacitySettings
from ce_ws.errors import Busy, RateLimited


@dataclass(eq=False)
class _Waiter:
    client: str
    granted: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Admission:
    """Hands out run slots in arrival order, honouring both caps."""

    def __init__(self, capacity: CapacitySettings) -> None:
        self._capacity = capacity
        self._active: Counter[str] = Counter()
        self._waiting: list[_Waiter] = []

    @property
    def active(self) -> int:
        return self._active.total()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def has_room(self) -> bool:
        """Whether a new run would start without waiting (for readiness)."""
        return self.active < self._capacity.max_runs

    def _fits(self, client: str) -> bool:
        return (
            self.active < self._capacity.max_runs
            and self._active[client] < self._capacity.max_runs_per_client
        )

    @contextlib.asynccontextmanager
    async def slot(
        self, client: str, *, on_queued: Callable[[int], Awaitable[None]]
    ) -> AsyncIterator[None]:
        """Hold one run slot for `client`; waits in line, or raises `Busy`."""
        # Waiters are granted as soon as they fit, so a newcomer that fits
        # now jumps no one who could have run.
        if self._fits(client):
            self._active[client] += 1
        else:
            await self._wait_in_line(client, on_queued)
        try:
            yield
        finally:
            self._release(client)

    @contextlib.contextmanager
    def spare_slot(self, client: str, *, share: float) -> Iterator[None]:
        """Hold a slot only if one is spare: below `share` of the server's, none waiting.

        For work done ahead for a client (a `prepare`): it never waits in
        line, and a run arriving meanwhile still finds the rest free.
        """
        if (
            self._waiting
            or self.active >= self._capacity.max_runs * share
            or not self._fits(client)
        ):
            raise Busy("the server is busy; the run will compile when it starts")
        self._active[client] += 1
        try:
            yield
        finally:
            self._release(client)

    def _release(self, client: str) -> None:
        self._active[client] -= 1
        self._grant_waiters()

    def _check_room_in_line(self, client: str) -> None:
        """Raise `Busy` when the line a new waiter of `client` would join is full."""
        waiting = Counter(waiter.client for waiter in self._waiting)
        # At or past 0, the client's earlier runs fill its cap: this one waits for its own.
        beyond_own_cap = self._active[client] + waiting[client] - self._capacity.max_runs_per_client
        if beyond_own_cap >= 0:
            if beyond_own_cap >= self._capacity.max_queue_per_client:
                raise Busy(
                    "too many runs of this client are waiting already; try again when one ends"
                )
        elif sum(self._runnable(waiting, other) for other in waiting) >= self._capacity.max_queue:
            raise Busy("the server is at capacity and its queue is full; try again later")

    def _runnable(self, waiting: Counter[str], client: str) -> int:
        """How many of `client`'s waiters its own cap lets run: those hold shared places."""
        room = max(0, self._capacity.max_runs_per_client - self._active[client])
        return min(waiting[client], room)

    async def _wait_in_line(self, client: str, on_queued: Callable[[int], Awaitable[None]]) -> None:
        self._check_room_in_line(client)
        waiter = _Waiter(client)
        self._waiting.append(waiter)
        try:
            await on_queued(len(self._waiting))
            await waiter.granted
        except BaseException:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._active[client] -= 1
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            self._grant_waiters()
            raise

    def _grant_waiters(self) -> None:
        for waiter in list(self._waiting):
            if self._fits(waiter.client):
                self._waiting.remove(waiter)
                self._active[waiter.client] += 1
                waiter.granted.set_result(None)


#: Client buckets kept before the refilled ones are forgotten.
_PRUNE_ABOVE = 1024


class TokenBucket:
    """At most `per_minute` events a minute, refilled smoothly.

    Bursts go up to `burst` events, by default `per_minute`.
    """

    def __init__(self, per_minute: int, *, burst: int | None = None) -> None:
        self._per_minute = per_minute
        self._burst = float(per_minute if burst is None else burst)
        self._tokens = self._burst
        self._stamp = time.monotonic()

    def has_token(self) -> bool:
        """Whether `take` would succeed now (takes nothing)."""
        return self._tokens_at(time.monotonic()) >= 1

    def take(self) -> bool:
        """Spend one token; False when none is left."""
        now = time.monotonic()
        self._tokens, self._stamp = self._tokens_at(now), now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def is_full(self) -> bool:
        """Whether the bucket has refilled completely (it then holds no history)."""
        return self._tokens_at(time.monotonic()) >= self._burst

    def _tokens_at(self, now: float) -> float:
        refill = (now - self._stamp) * self._per_minute / 60
        return min(self._burst, self._tokens + refill)


def control_budget(capacity: CapacitySettings) -> TokenBucket:
    """A socket's budget of control messages (`signal`, `resize`, `ping`), per second."""
    return TokenBucket(capacity.controls_per_second * 60, burst=capacity.controls_burst)


class RateLimiter:
    """A token bucket per client: at most `per_minute` events (runs, by default)."""

    def __init__(self, per_minute: int, *, events: str = "runs") -> None:
        self._per_minute = per_minute
        self._events = events
        self._buckets: dict[str, TokenBucket] = {}
        self._prune_at = _PRUNE_ABOVE

    def check(self, client: str) -> None:
        """Take one token for a new event, or raise `RateLimited`."""
        if not self._bucket(client).take():
            raise self.refusal()

    def check_left(self, client: str) -> None:
        """Raise `RateLimited` if `client` has no token left; takes none."""
        if not self._bucket(client).has_token():
            raise self.refusal()

    def spend(self, client: str) -> None:
        """Take one token if one is left: an event that already happened."""
        self._bucket(client).take()

    def _bucket(self, client: str) -> TokenBucket:
        if len(self._buckets) >= self._prune_at:
            self._forget_refilled()
        return self._buckets.setdefault(client, TokenBucket(self._per_minute))

    def refusal(self) -> RateLimited:
        """What a client past its limit is told."""
        return RateLimited(f"more than {self._per_minute} {self._events} a minute; slow down")

    def _forget_refilled(self) -> None:
        # A full bucket is what a new client gets anyway: dropping it changes
        # nothing, and keeps many distinct clients from growing the table.
        self._buckets = {key: b for key, b in self._buckets.items() if not b.is_full()}
        self._prune_at = max(_PRUNE_ABOVE, 2 * len(self._buckets))


class ClientConnections:
    """Counts open connections (or requests) per client, for a per-client cap."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: Counter[str] = Counter()

    def has_room(self, client: str) -> bool:
        """Whether `client` may open one more connection."""
        return self._open[client] < self.per_client

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """Count one connection of `client` while inside."""
        self._open[client] += 1
        try:
            yield
        finally:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]
