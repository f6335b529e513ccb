"""One Docker engine and everything that runs beside it.

A `DockerSandbox` per engine; `EngineFleet` (fleet.py) places runs on them.
`start()` opens the engine and starts the background work that belongs to
it (the OOM events watch, the orphan reaper, the warm pool); `aclose()` stops
it all, sweeps what is left and closes the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from ce_ws.config import EngineSettings, Settings
from ce_ws.errors import SandboxError
from ce_ws.image import RECIPE_LABEL, recipe_hash
from ce_ws.languages import LanguageTable
from ce_ws.sandbox.base import (
    BoxPlan,
    BoxProfile,
    EngineCondition,
    EngineState,
    PoolFigures,
    SandboxObserver,
)
from ce_ws.sandbox.box import Box, start_box
from ce_ws.sandbox.compile_cache import CompileCache, cache_path
from ce_ws.sandbox.egress import Egress
from ce_ws.sandbox.engine import CreationHook, Engine
from ce_ws.sandbox.pool import WarmPool, host_memory_bytes

log = logging.getLogger(__name__)

SECCOMP_PROFILE = Path(__file__).resolve().parents[2] / "docker" / "seccomp.json"
#: What the log says when shutdown had to remove what runs left behind.
SHUTDOWN_SWEEP = "shutdown sweep removed"


def pooled_profiles(settings: Settings, languages: LanguageTable) -> list[BoxProfile]:
    """Default limits, with and without a terminal, for each kind of language.

    A kind is what the container fixes at create time: whether /tmp may hold
    a compiled program, the runtime, and the launcher it waits in.
    """
    kinds = {
        (
            language.compiled,
            settings.sandbox.runtime_for(language.name),
            language.box_launcher(preload=settings.sandbox.preload),
        )
        for language in languages
    }
    # A networked box holds its own network with the policy's proxy on it:
    # a pool per policy skips creating and connecting it too.
    networks: list[str | None] = [None, *settings.network.policies]
    return [
        BoxProfile.of(
            settings.defaults,
            tty=tty,
            tmp_exec=compiled,
            runtime=runtime,
            network=network,
            launcher=launcher,
        )
        for network in networks
        for tty in (True, False)
        for compiled, runtime, launcher in sorted(kinds)
        if network is None or runtime == "runc"  # runsc has no network here
    ]


class DockerSandbox:
    """Boxes from the warm pool when one fits, cold ones otherwise, on one engine."""

    def __init__(
        self,
        settings: Settings,
        languages: LanguageTable,
        *,
        engine: EngineSettings,
        owner: str,
        on_created: CreationHook | None = None,
    ) -> None:
        """`owner` labels the engine's containers and names their folders (its reaper's own);
        `on_created` sees every container right after the engine made it."""
        self._settings = settings
        self._languages = languages
        self._on_created = on_created
        self.name = engine.name
        self.capacity = engine.capacity
        self._url, self._tls = engine.url, engine.tls
        self._owner = owner
        #: Boxes open for runs now (placement's measure of load).
        self.runs = 0
        self.draining = False
        self._engine: Engine | None = None
        self._egress: Egress | None = None
        self.pool: WarmPool | None = None
        self._background: list[asyncio.Task[None]] = []
        self._reap_now = asyncio.Event()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("the sandbox is not started")
        return self._engine

    async def start(self, observer: SandboxObserver) -> None:
        """Open the engine client and start the events watch, the reaper and the pool."""
        profile = await asyncio.to_thread(SECCOMP_PROFILE.read_text)
        engine = Engine(
            self._settings.sandbox,
            url=self._url,
            tls=self._tls,
            server_id=self._owner,
            seccomp_profile=profile,
            on_created=self._on_created,
        )
        engine.on_box_started = observer.box_started
        self._engine = engine
        engine.events.on_back = self._engine_is_back
        engine.events.on_died = lambda container_id: self._pool_drops_dead()
        self._egress = Egress(
            engine,
            self._settings.network,
            on_decision=lambda policy, run_id, decision: observer.proxy_decision(
                policy=policy,
                run_id=run_id,
                destination=decision.destination,
                verdict=decision.verdict,
            ),
        )
        engine.use_egress(self._egress)
        # The reaper first: a crashed server's proxies and networks go before new ones come.
        with contextlib.suppress(SandboxError):
            if removed := await engine.reap():
                observer.reaped(removed)
        try:
            await self._egress.start()
        except BaseException:
            # A proxy that cannot start stops the server (no policy would hold):
            # what was started so far is removed first.
            await self.aclose()
            raise
        if self._settings.compile_cache.enabled:
            engine.compile_cache = await asyncio.to_thread(self._new_compile_cache)
        self._background = [
            asyncio.create_task(engine.events.follow_forever()),
            asyncio.create_task(self._reap_forever(observer)),
        ]
        if self._settings.pool.enabled:
            self.pool = WarmPool(
                engine,
                self._settings.pool,
                profiles=pooled_profiles(self._settings, self._languages),
                memory_budget_bytes=int(host_memory_bytes() * self._settings.pool.max_memory_share),
            )
            self._background.append(asyncio.create_task(self.pool.keep_filled()))

    def _new_compile_cache(self) -> CompileCache:
        # The checkout's recipe: readiness refuses an image built from another one.
        sandbox = self._settings.sandbox
        return CompileCache(
            self._settings.compile_cache,
            folder=cache_path(sandbox.staging_root, self._owner),
            recipe=f"{sandbox.image}@{recipe_hash()}",
        )

    async def aclose(self) -> None:
        """Stop the background work, destroy idle boxes, sweep, close; called once."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        engine = self.engine
        await engine.finish_cleanups()
        if self._egress is not None:
            await self._egress.aclose()
        with contextlib.suppress(Exception):
            if leftovers := await engine.reap(spare_live=False):
                # Every run and warm box removes its own container and folder.
                log.warning("%s: %d leftovers no run cleaned up", SHUTDOWN_SWEEP, leftovers)
        if engine.compile_cache is not None:
            await asyncio.to_thread(engine.compile_cache.remove)
        await engine.close()

    def _engine_is_back(self) -> None:
        self._pool_drops_dead()
        self._reap_now.set()  # what died meanwhile goes now, not at the next interval

    def _pool_drops_dead(self) -> None:
        if self.pool is not None:
            self.pool.drop_dead()

    @contextlib.asynccontextmanager
    async def open_box(self, plan: BoxPlan) -> AsyncIterator[Box]:
        """A started container holding `plan`'s files, destroyed when the context ends."""
        if not self.engine.events.reachable:
            raise SandboxError(self.engine.events.unreachable_because)
        self.runs += 1
        try:
            box = self.pool.claim(plan.profile) if self.pool is not None else None
            if box is None:
                box = await start_box(self.engine, plan.profile, size=plan.size)
            try:
                await box.stage(plan.files)
                yield box
            finally:
                await box.destroy()  # shielded and bounded: nothing lingers
        finally:
            self.runs -= 1

    @property
    def reachable(self) -> bool:
        """Whether the engine answers now (its events stream is followed)."""
        return self._engine is not None and self._engine.events.reachable

    def has_idle(self, profile: BoxProfile) -> bool:
        """Whether a warm box of this profile waits here."""
        return self.pool is not None and self.pool.has_idle(profile)

    def drain(self) -> None:
        """Take no new run; live ones go on, idle boxes go."""
        self.draining = True
        if self.pool is not None:
            self.pool.pause()

    def resume(self) -> None:
        self.draining = False
        if self.pool is not None:
            self.pool.resume()

    async def state(self) -> EngineState:
        """This engine's condition now (probes the engine and its image)."""
        reason = await self.not_ready_because()
        if reason is None and self.draining:
            reason = "drained by an operator; it takes no new run"
        condition: EngineCondition = (
            "down" if not self.reachable else ("draining" if self.draining else "ready")
        )
        return EngineState(
            name=self.name,
            condition=condition,
            reason=reason,
            runs=self.runs,
            capacity=self.capacity,
            pool_idle=self.pool.size if self.pool is not None else None,
        )

    def pool_figures(self) -> PoolFigures | None:
        """The warm pool's figures, when there is a pool (read at scrape time)."""
        if self.pool is None:
            return None
        return PoolFigures(self.pool.size, self.pool.stats.hits, self.pool.stats.misses)

    async def not_ready_because(self) -> str | None:
        """Why a run could not start now (engine or image), or None."""
        image = self._settings.sandbox.image
        try:
            await self.engine.version()
            labels = await self.engine.image_labels(image)
        except SandboxError as exc:
            return exc.message
        if labels is None:
            return f"the runtime image {image} is absent; build it with `python -m ce_ws image`"
        if labels.get(RECIPE_LABEL) != await asyncio.to_thread(recipe_hash):
            return (
                f"the runtime image {image} is out of date; rebuild it with `python -m ce_ws image`"
            )
        return None

    async def _reap_forever(self, observer: SandboxObserver) -> None:
        """Remove what a crashed server left behind: at startup, then periodically."""
        while True:
            try:
                if removed := await self.engine.reap():
                    log.info("reaper removed %d leftovers", removed)
                    observer.reaped(removed)
            except SandboxError as exc:
                log.warning("reaper failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.sandbox.reap_interval_s):
                    await self._reap_now.wait()
            self._reap_now.clear()
