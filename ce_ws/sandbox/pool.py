"""The warm pool: containers created, attached and started ahead of time.

Each idle box is a hardened container with an empty staging folder mounted
and its launcher waiting for "go"; no user code has ever run in it. A run
whose profile matches claims one and skips container creation entirely. A
claimed box is never returned: it is destroyed after its run like any other.

Refilling runs in one background task with bounded concurrency, so it never
competes with live runs for more than `refill_concurrency` container starts.
The same task gives way first when the host runs short: below the memory
floor it destroys its idle boxes (runs still start, cold), and when the
runtime image's name points at a new image (a refresh) it replaces the idle
boxes made from the old one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ce_ws.config import PoolSettings
from ce_ws.errors import SandboxError
from ce_ws.sandbox.base import BoxProfile
from ce_ws.sandbox.box import Box, start_box
from ce_ws.sandbox.engine import Engine
from ce_ws.sandbox.spec import engine_limits

log = logging.getLogger(__name__)

_RETRY_AFTER_FAILURE_S = 2.0
_AGE_CHECK_S = 5.0


@dataclass
class PoolStats:
    """What /readyz and /metrics report about the pool."""

    hits: int = 0
    misses: int = 0
    refills: int = 0
    refill_failures: int = 0
    #: Idle boxes found dead (their container died, or the engine restarted).
    dead: int = 0
    last_refill_s: float = 0.0


def host_memory_bytes() -> int:
    """Total memory of this host, for the pool's memory budget."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def host_available_bytes() -> int:
    """The memory the kernel says could be given to new work now (`MemAvailable`)."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


class MemoryPressure(Enum):
    """What the host's free memory lets the pool do."""

    NONE = "none"  # fill as usual
    HOLD = "hold"  # keep the idle boxes, start no more (just above the floor)
    SHED = "shed"  # below the floor: destroy every idle box, start none


#: Refilling resumes only this far above the floor, so the pool does not flap.
RESUME_ABOVE_FLOOR = 1.25


def memory_pressure(
    available_bytes: int, floor_bytes: int, *, was: MemoryPressure
) -> MemoryPressure:
    """The pool's state for this much `MemAvailable`; `was` gives the hysteresis."""
    if floor_bytes <= 0:
        return MemoryPressure.NONE
    if available_bytes < floor_bytes:
        return MemoryPressure.SHED
    if available_bytes < floor_bytes * RESUME_ABOVE_FLOOR and was is not MemoryPressure.NONE:
        return MemoryPressure.HOLD
    return MemoryPressure.NONE


class WarmPool:
    """Idle boxes per profile, refilled in the background."""

    def __init__(
        self,
        engine: Engine,
        settings: PoolSettings,
        *,
        profiles: list[BoxProfile],
        memory_budget_bytes: int,
    ) -> None:
        """`profiles` are kept warm; their memory limits never add up past the budget."""
        self._engine = engine
        self._settings = settings
        self._profiles = profiles
        self._memory_budget = memory_budget_bytes
        self._idle: dict[BoxProfile, deque[Box]] = {profile: deque() for profile in profiles}
        self._starting: Counter[BoxProfile] = Counter()
        self._wanted = asyncio.Event()
        self._wanted.set()
        self.stats = PoolStats()
        self.pressure = MemoryPressure.NONE
        #: The image id the runtime image's name pointed at when each idle box started.
        self._image_of: dict[str, str] = {}
        self._image_id: str | None = None
        self._image_checked_at = float("-inf")
        #: While paused (its engine drained) the pool keeps no idle box and starts none.
        self._paused = False

    @property
    def size(self) -> int:
        return sum(len(boxes) for boxes in self._idle.values())

    def idle_box_ids(self) -> set[str]:
        """The ids of the boxes waiting now (for tests and diagnostics)."""
        return {box.box_id for queue in self._idle.values() for box in queue}

    def has_idle(self, profile: BoxProfile) -> bool:
        """Whether a box of this profile is waiting (it may still turn out dead)."""
        return bool(self._idle.get(profile))

    def pause(self) -> None:
        """Destroy the idle boxes and start no more until `resume` (an engine drains)."""
        self._paused = True
        self._wanted.set()

    def resume(self) -> None:
        self._paused = False
        self._wanted.set()

    def claim(self, profile: BoxProfile) -> Box | None:
        """A live idle box for this profile, or None (the caller takes the cold path)."""
        boxes = self._idle.get(profile)
        while boxes:
            box = boxes.popleft()
            self._wanted.set()
            if box.is_alive():
                self.stats.hits += 1
                return box
            self._discard(box)
        self.stats.misses += 1
        return None

    def drop_dead(self) -> None:
        """Destroy every idle box whose container died (the engine restarted, say)."""
        for profile, queue in self._idle.items():
            alive = [box for box in queue if box.is_alive()]
            for box in queue:
                if box not in alive:
                    self._discard(box)
            self._idle[profile] = deque(alive)
        self._wanted.set()

    def _discard(self, box: Box) -> None:
        log.warning("warm box %s died while idle; it is replaced", box.box_id)
        self.stats.dead += 1
        self._engine.clean_up(box.destroy())

    async def keep_filled(self) -> None:
        """The background task: top every profile up, recycle old boxes; runs until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_AGE_CHECK_S):
                    await self._wanted.wait()
            self._wanted.clear()
            if self._paused:
                await self._destroy_idle(lambda box: True)
                continue
            await self._recycle_old()
            await self._recycle_other_image()
            if await self._shed_under_memory_pressure():
                continue
            if not await self._fill():
                await asyncio.sleep(_RETRY_AFTER_FAILURE_S)
                self._wanted.set()

    async def close(self) -> None:
        """Destroy every idle box; called once at shutdown after `keep_filled` stopped."""
        boxes = [box for queue in self._idle.values() for box in queue]
        for queue in self._idle.values():
            queue.clear()
        await asyncio.gather(*(box.destroy() for box in boxes))

    async def _shed_under_memory_pressure(self) -> bool:
        """Destroy the idle boxes below the memory floor; True while none may be added."""
        floor = self._settings.min_host_available_mb * 1024 * 1024
        self.pressure = memory_pressure(host_available_bytes(), floor, was=self.pressure)
        if self.pressure is MemoryPressure.SHED and self.size:
            log.warning("host memory below the pool's floor: destroying %d idle boxes", self.size)
            await self._destroy_idle(lambda box: True)
        return self.pressure is not MemoryPressure.NONE

    async def _recycle_other_image(self) -> None:
        """Replace the idle boxes made before the image's name moved to a new image.

        Asked at most every `_AGE_CHECK_S`: claims wake this loop once per run.
        """
        if time.monotonic() - self._image_checked_at < _AGE_CHECK_S:
            return
        self._image_checked_at = time.monotonic()
        try:
            current = await self._engine.image_id(self._engine.settings.image)
        except SandboxError as exc:
            log.warning("warm pool cannot inspect the runtime image: %s", exc)
            return
        if current is None:
            return  # absent: runs fail with their own message; keep what is here
        self._image_id = current
        idle = self.idle_box_ids()
        self._image_of = {box: image for box, image in self._image_of.items() if box in idle}
        if any(image != current for image in self._image_of.values()):
            log.info(
                "runtime image %s is now %s: replacing older idle boxes",
                self._engine.settings.image,
                current[:19],
            )
            await self._destroy_idle(lambda box: self._image_of.get(box.box_id, current) != current)

    async def _destroy_idle(self, which: Callable[[Box], bool]) -> None:
        """Take the idle boxes `which` picks out of the pool at once, then destroy them."""
        doomed = [box for queue in self._idle.values() for box in queue if which(box)]
        for queue in self._idle.values():
            for box in [box for box in queue if which(box)]:
                queue.remove(box)
        await asyncio.gather(*(box.destroy() for box in doomed))

    def _memory_in_use(self) -> int:
        idle = [box.profile for queue in self._idle.values() for box in queue]
        return sum(self._memory_of(p) for p in [*idle, *self._starting.elements()])

    def _memory_of(self, profile: BoxProfile) -> int:
        """A box's memory limit as the engine sets it (gVisor's headroom included)."""
        return engine_limits(self._engine.settings, profile.limits, profile.runtime)[0]

    def _has_room_for(self, profile: BoxProfile) -> bool:
        return (
            len(self._idle[profile]) + self._starting[profile] < self._settings.per_profile
            and self.size + self._starting.total() < self._settings.max_total
            and self._memory_in_use() + self._memory_of(profile) <= self._memory_budget
        )

    async def _fill(self) -> bool:
        """Start boxes until every profile is full; False when the engine failed."""
        if not self._engine.events.reachable:
            return False  # not one doomed start per profile while it is away
        limit = asyncio.Semaphore(self._settings.refill_concurrency)

        async def one(profile: BoxProfile) -> bool:
            async with limit:
                if not self._has_room_for(profile):
                    return True
                self._starting[profile] += 1
                try:
                    return await self._add(profile)
                finally:
                    self._starting[profile] -= 1

        while True:
            needed = [profile for profile in self._profiles if self._has_room_for(profile)]
            if not needed:
                return True
            # A TaskGroup, not gather: cancelled, it still waits for every start,
            # so no container is left half-made behind a closed engine client.
            async with asyncio.TaskGroup() as group:
                starts = [group.create_task(one(profile)) for profile in needed]
            if not all(start.result() for start in starts):
                return False

    async def _add(self, profile: BoxProfile) -> bool:
        began = time.monotonic()
        try:
            box = await start_box(self._engine, profile)
        except SandboxError as exc:
            self.stats.refill_failures += 1
            log.warning("warm pool refill failed: %s", exc)
            return False
        self.stats.refills += 1
        self.stats.last_refill_s = time.monotonic() - began
        if self._image_id is not None:
            self._image_of[box.box_id] = self._image_id
        self._idle[profile].append(box)
        return True

    async def _recycle_old(self) -> None:
        cutoff = time.monotonic() - self._settings.max_age_s
        for queue in self._idle.values():
            while queue and queue[0].created < cutoff:
                await queue.popleft().destroy()
