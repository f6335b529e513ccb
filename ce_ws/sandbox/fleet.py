"""Several Docker engines behind one backend: each run goes where there is most room.

`EngineFleet` is what `create_app` uses unless it is given another backend.
It holds one `DockerSandbox` per engine of `SandboxSettings.engine_list()`
(one, `local`, when `CE_SANDBOX__ENGINES` is unset). A run's box is opened on
the engine that answers, is not drained, and has the most free capacity;
a run stays on its engine for its whole life. An engine that stops answering
ends its own runs with `error` (its box's attach stream breaks) and takes no
new ones until it answers again; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ce_ws.config import Settings
from ce_ws.errors import SandboxError, UnknownEngine
from ce_ws.languages import LanguageTable
from ce_ws.sandbox.base import BoxPlan, BoxProfile, EngineState, PoolFigures, SandboxObserver
from ce_ws.sandbox.box import Box
from ce_ws.sandbox.docker import DockerSandbox
from ce_ws.sandbox.engine import CreationHook


def engine_owner(server_id: str, engine: str, *, several: bool) -> str:
    """The owner label of a server's containers on one engine.

    With one engine it is the server id, as it always was. With several, each
    engine's boxes get `<server id>-<engine>`, so each engine's reaper removes
    only its own staging folders from the host's shared staging root.
    """
    return f"{server_id}-{engine}" if several else server_id


def choose_engine(members: list[DockerSandbox], profile: BoxProfile) -> DockerSandbox:
    """The engine for a new run: answering, not drained, with the most free capacity.

    Ties go to an engine with a warm box of the run's profile, then to the
    first configured. Raises `SandboxError` when none may take it: the run
    ends `error` with that message, as when its one engine does not answer.
    """
    open_ = [member for member in members if member.reachable and not member.draining]
    if not open_:
        if len(members) == 1 and not members[0].draining:
            raise SandboxError(members[0].engine.events.unreachable_because)
        raise SandboxError(
            "no container engine takes runs now (each is drained or not answering);"
            " try again in a few seconds"
        )
    free = [member for member in open_ if member.runs < member.capacity]
    if not free:
        raise SandboxError(
            "every container engine runs as many programs as it may; try again in a few seconds"
        )
    return max(free, key=lambda member: (member.capacity - member.runs, member.has_idle(profile)))


class EngineFleet:
    """The server's backend: one `DockerSandbox` per engine, and placement over them."""

    def __init__(
        self,
        settings: Settings,
        languages: LanguageTable,
        *,
        on_created: CreationHook | None = None,
    ) -> None:
        engines = settings.sandbox.engine_list()
        several = len(engines) > 1
        self._observer: SandboxObserver | None = None
        self.members = [
            DockerSandbox(
                settings,
                languages,
                engine=engine,
                owner=engine_owner(settings.server_id, engine.name, several=several),
                on_created=on_created,
            )
            for engine in engines
        ]

    def member(self, name: str) -> DockerSandbox:
        """The engine of this name; raises `UnknownEngine` (the admin API's 404)."""
        found = next((member for member in self.members if member.name == name), None)
        if found is None:
            names = ", ".join(member.name for member in self.members)
            raise UnknownEngine(f"this server drives no engine named {name!r} (it has {names})")
        return found

    async def start(self, observer: SandboxObserver) -> None:
        """Start every engine's background work; an engine that is down rejoins later."""
        self._observer = observer
        started: list[DockerSandbox] = []
        try:
            for member in self.members:
                await member.start(observer)
                started.append(member)
        except BaseException:
            await asyncio.gather(*(member.aclose() for member in started))
            raise

    async def aclose(self) -> None:
        await asyncio.gather(*(member.aclose() for member in self.members))

    @contextlib.asynccontextmanager
    async def open_box(self, plan: BoxPlan) -> AsyncIterator[Box]:
        """A started box on the chosen engine (see `choose_engine`)."""
        member = choose_engine(self.members, plan.profile)
        if self._observer is not None:  # None only before `start`, where no box opens
            self._observer.run_placed(member.name)
        async with member.open_box(plan) as box:
            yield box

    async def engine_states(self) -> list[EngineState]:
        return list(await asyncio.gather(*(member.state() for member in self.members)))

    def drain(self, engine: str) -> None:
        self.member(engine).drain()

    def resume(self, engine: str) -> None:
        self.member(engine).resume()

    def pool_figures(self) -> PoolFigures | None:
        """Every engine's warm pool added up (None when the pool is off)."""
        figures = [f for member in self.members if (f := member.pool_figures()) is not None]
        if not figures:
            return None
        return PoolFigures(
            idle=sum(f.idle for f in figures),
            hits=sum(f.hits for f in figures),
            misses=sum(f.misses for f in figures),
        )
