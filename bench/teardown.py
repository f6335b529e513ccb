"""6. Teardown: from the end of a program to its container being gone.

Timed by the engine itself: its `die` event (the program and its init ended)
to its `destroy` event (the container removed), both stamped by dockerd.
For the server, also from the client receiving `exit` to `destroy`. Runs of
a Python hello world, one at a time, interleaved with the baselines:
`docker run --rm` (the engine's own auto-remove) and aiodocker's
`delete(force=True)` called as soon as `wait` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiodocker

from bench.baseline import baseline_config, docker_run, docker_run_argv, engine_floor, staged
from bench.client import Session
from bench.common import BenchContext, BenchResult, rotated
from bench.engine import BASELINE_OWNER, OWNER_LABEL, idle_count, wait_settled
from bench.programs import PYTHON_HELLO
from bench.progress import Ticker
from bench.server import bench_server, server_env
from bench.stats import SUMMARY_HEADERS, Summary, Table, fmt, fmt_ratio, ratio, summary_cells

COLD, WARM, DOCKER_RUN, FLOOR = (
    "server, pool off",
    "server, pool on",
    "docker run --rm",
    "aiodocker delete",
)
MODES = (COLD, WARM, DOCKER_RUN, FLOOR)
_EVENT_TIMEOUT_S = 30.0


class EngineEvents:
    """`die` and `destroy` times (ns, engine clock) of the benchmark's containers."""

    def __init__(self) -> None:
        self._times: dict[tuple[str, str], int] = {}
        self._changed = asyncio.Condition()
        self._dead: list[str] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def follow(
        cls, docker: aiodocker.Docker, owners: list[str]
    ) -> AsyncIterator[EngineEvents]:
        """Listen to the engine's events for containers of these owners."""
        events = cls()
        # Several label filters must all match: filter on the key, pick owners here.
        filters = {"type": ["container"], "event": ["die", "destroy"], "label": [OWNER_LABEL]}
        subscriber = docker.events.subscribe(filters=json.dumps(filters))  # type: ignore[no-untyped-call]
        task = asyncio.create_task(events._read(subscriber, set(owners)))
        await asyncio.sleep(0.2)  # the subscription is made by a background task
        try:
            yield events
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await docker.events.stop()  # type: ignore[no-untyped-call]

    async def _read(
        self, subscriber: aiodocker.channel.ChannelSubscriber, owners: set[str]
    ) -> None:
        while (event := await subscriber.get()) is not None:  # type: ignore[no-untyped-call]
            if event.get("Actor", {}).get("Attributes", {}).get(OWNER_LABEL) not in owners:
                continue
            action, container_id = event.get("Action"), event.get("id", "")
            async with self._changed:
                self._times[(container_id, action)] = int(event["timeNano"])
                if action == "die":
                    self._dead.append(container_id)
                self._changed.notify_all()

    def mark(self) -> int:
        """Where the list of dead containers ends now."""
        return len(self._dead)

    async def teardown_after(self, mark: int) -> tuple[int, int]:
        """(die, destroy) in ns for the one container that died after `mark`."""
        async with asyncio.timeout(_EVENT_TIMEOUT_S), self._changed:
            await self._changed.wait_for(
                lambda: len(self._dead) > mark and (self._dead[mark], "destroy") in self._times
            )
            container_id = self._dead[mark]
            return self._times[(container_id, "die")], self._times[(container_id, "destroy")]


@dataclass(frozen=True, slots=True)
class Sample:
    """Die → destroy, and (server only) die → exit received → destroy, in ms."""

    die_to_destroy_ms: float
    die_to_exit_ms: float | None = None
    exit_to_destroy_ms: float | None = None


def _server_sampler(session: Session, events: EngineEvents) -> Callable[[], Awaitable[Sample]]:
    async def one() -> Sample:
        mark = events.mark()
        await session.run(PYTHON_HELLO.language, PYTHON_HELLO.source)
        await session.expect("exit")
        exit_ns = time.time_ns()
        die, destroy = await events.teardown_after(mark)
        return Sample((destroy - die) / 1e6, (exit_ns - die) / 1e6, (destroy - exit_ns) / 1e6)

    return one


def _baseline_sampler(
    run_one: Callable[[], Awaitable[object]], events: EngineEvents
) -> Callable[[], Awaitable[Sample]]:
    async def one() -> Sample:
        mark = events.mark()
        await run_one()
        die, destroy = await events.teardown_after(mark)
        return Sample((destroy - die) / 1e6)

    return one


def _median_of(values: list[float | None]) -> str:
    present = [value for value in values if value is not None]
    return fmt(Summary.of(present).median) if present else "-"


def _table(samples: dict[str, list[Sample]]) -> Table:
    summaries = {
        mode: Summary.of([s.die_to_destroy_ms for s in runs]) for mode, runs in samples.items()
    }
    rows = [
        [
            mode,
            *summary_cells(summary),
            fmt_ratio(ratio(summary.median, summaries[DOCKER_RUN].median)),
            _median_of([s.die_to_exit_ms for s in samples[mode]]),
            _median_of([s.exit_to_destroy_ms for s in samples[mode]]),
        ]
        for mode, summary in summaries.items()
    ]
    return Table(
        title="Teardown: program ended → container gone (ms)",
        headers=["path", *SUMMARY_HEADERS, "÷ docker run", "ended → exit", "exit → gone"],
        rows=rows,
        notes=(
            "From the engine's `die` event to its `destroy` event (dockerd's own clock).",
            "ended → exit: median from `die` to the client receiving `exit`; exit → gone: "
            "median from there to `destroy` (server only).",
        ),
    )


async def run(ctx: BenchContext) -> BenchResult:
    """Die → destroy for the server (pool off and on) and both baselines."""
    result = BenchResult(name="teardown", title="Teardown", what=__doc__.split("\n\n", 1)[1])
    reps = ctx.reps(15, 3)
    cold_id, warm_id = "ce-bench-teardown-cold", "ce-bench-teardown-warm"
    samples: dict[str, list[Sample]] = {mode: [] for mode in MODES}
    began = time.monotonic()
    async with (
        bench_server(server_env(cold_id, pool=False)) as cold_server,
        bench_server(server_env(warm_id, pool=True)) as warm_server,
        EngineEvents.follow(ctx.docker, [cold_id, warm_id, BASELINE_OWNER]) as events,
    ):
        cold = await Session.open(ctx.http, cold_server.ws_url)
        warm = await Session.open(ctx.http, warm_server.ws_url)
        try:
            with staged(PYTHON_HELLO) as path:
                argv = docker_run_argv(
                    baseline_config(PYTHON_HELLO, path, runtime="runc", tty=False)
                )
                floor_config = baseline_config(PYTHON_HELLO, path, runtime="runc", tty=True)
                samplers = {
                    COLD: _server_sampler(cold, events),
                    WARM: _server_sampler(warm, events),
                    DOCKER_RUN: _baseline_sampler(lambda: docker_run(argv), events),
                    FLOOR: _baseline_sampler(
                        lambda: engine_floor(ctx.docker, floor_config), events
                    ),
                }
                expected = {
                    cold_id: 0,
                    warm_id: await idle_count(ctx.docker, warm_id),
                    BASELINE_OWNER: 0,
                }
                ticker = Ticker("teardown samples", reps * len(MODES))
                for rep in range(reps):
                    for mode in rotated(MODES, rep):
                        await wait_settled(ctx.docker, expected)
                        samples[mode].append(await samplers[mode]())
                        ticker.tick()
        finally:
            await cold.close()
            await warm.close()
    result.tables.append(_table(samples))
    medians = {
        mode: Summary.of([s.die_to_destroy_ms for s in runs]).median
        for mode, runs in samples.items()
    }
    result.headline.append(
        "teardown (die → destroy): "
        + ", ".join(f"{mode} {value:.0f} ms" for mode, value in medians.items())
        + f"; server pool off ÷ docker run = {fmt_ratio(ratio(medians[COLD], medians[DOCKER_RUN]))}"
    )
    result.data = {mode: [s.die_to_destroy_ms for s in runs] for mode, runs in samples.items()}
    result.data["die_to_exit_ms"] = {
        mode: [s.die_to_exit_ms for s in samples[mode]] for mode in (COLD, WARM)
    }
    result.data["exit_to_destroy_ms"] = {
        mode: [s.exit_to_destroy_ms for s in samples[mode]] for mode in (COLD, WARM)
    }
    result.seconds = time.monotonic() - began
    return result
