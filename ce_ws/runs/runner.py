"""The Runner: the one way a run starts, is found, and is ended at shutdown.

Every surface (the WebSocket, REST, and whatever adapter comes next) calls
`Runner.start` with the request it parsed, the subscriber that owns the run,
and who the client is. Planning, the rate limit, admission and telemetry
happen here, once, for all of them; the surface only translates its wire
format. The `RunHandle` it gets back carries the run's controls, and
`outcome()` gives its `exit`. More subscribers than the owner (a room, a
recorder) are taps beside it (tee.py), chosen by the surface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Literal

from ce_ws.config import Settings
from ce_ws.errors import Busy, CeError, RateLimited
from ce_ws.languages import Language, LanguageTable
from ce_ws.protocol import (
    Exit,
    Prepared,
    Queued,
    RunRequest,
    ServerMessage,
    Status,
    error_message,
)
from ce_ws.runs.admission import Admission
from ce_ws.runs.fanout import Subscriber
from ce_ws.runs.plan import RunPlan, plan_run
from ce_ws.runs.run import Run, RunState, Terminal
from ce_ws.runs.shared_rate import run_rate_limit
from ce_ws.runs.shared_runs import SharedRuns
from ce_ws.sandbox.base import Sandbox
from ce_ws.telemetry import ClientTelemetry, Telemetry, Via
from ce_ws.types import StreamId

log = logging.getLogger(__name__)

#: How long runs still going after the shutdown grace get to remove their boxes.
_CANCEL_GRACE_S = 10.0
#: How often a run waiting for its client's runs on other replicas asks again.
_CLUSTER_RETRY_S = 0.25


@dataclass(frozen=True, slots=True)
class Client:
    """Who asks for a run: the key its caps and rate limit count against, and the door."""

    key: str
    via: Via
    #: Tokens the client presented outside the request body (a bearer header).
    credentials: tuple[str, ...] = ()


class RunHandle:
    """A started (or queued) run, as a surface sees it."""

    def __init__(self, run: Run, task: asyncio.Task[Exit]) -> None:
        self._run = run
        self._task = task

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def language(self) -> Language:
        return self._run.plan.language

    @property
    def state(self) -> RunState:
        return self._run.state

    @property
    def ended(self) -> bool:
        return self._run.state is RunState.ENDED

    async def feed_stdin(self, data: bytes) -> None:
        await self._run.feed_stdin(data)

    async def end_input(self) -> None:
        await self._run.end_input()

    def resize(self, cols: int, rows: int) -> None:
        self._run.resize(cols, rows)

    async def signal(self, name: str) -> None:
        await self._run.signal(name)

    async def kill(self) -> None:
        """The client stops the run: `killed`, or simply gone when it was still queued."""
        if self._run.state is RunState.PENDING:
            await self.cancel()
        else:
            await self._run.kill()

    async def abort(self, message: str) -> None:
        await self._run.abort(message)

    def ack(self, count: int) -> None:
        self._run.ack(count)

    @property
    def exit(self) -> Exit | None:
        """The run's `exit` once decided (also when its client went away and got none)."""
        return self._run.exit

    async def outcome(self) -> Exit:
        """The run's `exit` as soon as it is decided (its box may still be being removed).

        Raises the `CeError` that kept it from starting (`Busy`).
        """
        decided = asyncio.ensure_future(self._run.decided.wait())
        try:
            await asyncio.wait([self._task, decided], return_when=asyncio.FIRST_COMPLETED)
        finally:
            decided.cancel()
        if self._run.exit is not None:
            return self._run.exit
        return self._task.result()

    async def cancel(self, timeout_s: float = _CANCEL_GRACE_S) -> None:
        """The client went away: end the run now and wait (bounded) for its cleanup."""
        if self._task.done():
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, CeError):
            async with asyncio.timeout(timeout_s):
                await self._task

    def done(self) -> bool:
        """Whether the run's task, container removal included, is over."""
        return self._task.done()

    async def wait_done(self, timeout_s: float) -> None:
        """Wait (bounded) until the run's task is over; never raises."""
        await asyncio.wait([self._task], timeout=timeout_s)


class Runner:
    """Starts, tracks and ends every run of this server."""

    def __init__(
        self,
        settings: Settings,
        sandbox: Sandbox,
        *,
        languages: LanguageTable,
        telemetry: Telemetry,
    ) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._languages = languages
        self._telemetry = telemetry
        self.admission = Admission(settings.capacity)
        self._rate_limit = run_rate_limit(settings)
        self._runs: set[RunHandle] = set()
        #: Each client's runs and each run's replica across replicas (None: one node).
        self.shared: SharedRuns | None = None
        if settings.redis_url is not None:
            self.shared = SharedRuns(
                url=settings.redis_url,
                replica_url=settings.replica_url(),
                live_run_ids=lambda: [handle.run_id for handle in self._runs if not handle.ended],
            )
        self._closing = False

    @property
    def telemetry(self) -> Telemetry:
        """The server's metrics and event log (the sandbox reports to it too)."""
        return self._telemetry

    @property
    def live(self) -> int:
        """Runs not yet over (queued, running, or removing their box)."""
        return len(self._runs)

    async def start(
        self,
        request: RunRequest,
        *,
        owner: Subscriber,
        client: Client,
        terminal: Terminal,
        queue_wait_s: float | None = None,
    ) -> RunHandle:
        """Plan, rate-limit and queue a run; raises the `CeError` that refuses it."""
        telemetry = self._telemetry.for_client(client.key, via=client.via)
        try:
            if self._closing:
                raise Busy("the server is shutting down; try again later")
            plan = plan_run(
                request,
                languages=self._languages,
                settings=self._settings,
                credentials=client.credentials,
                terminal=terminal.tty,
            )
            await self._rate_limit.check(client.key)
        except CeError as exc:
            telemetry.refused(exc)
            raise
        run = Run(
            plan,
            sandbox=self._sandbox,
            settings=self._settings.sandbox,
            owner=owner,
            terminal=terminal,
            observer=telemetry.run(plan.language.name),
        )
        return self._track(run, self._drive(run, client.key, telemetry, queue_wait_s))

    async def prepare(self, request: RunRequest, *, client: Client) -> Prepared:
        """Compile `request`'s files into the compile cache ahead of their run; runs nothing.

        Only in a spare run slot: never queued, never ahead of a run. Raises
        the `CeError` that refuses a bad request, as `start` does.
        """
        plan = plan_run(
            request,
            languages=self._languages,
            settings=self._settings,
            credentials=client.credentials,
            terminal=True,
        )
        language = plan.language.name
        cache = self._settings.compile_cache
        if not plan.language.compiled:
            return _skipped(plan, f"{language} is not compiled: its runs start at once")
        if not (cache.enabled and cache.prepare) or self._closing:
            return _skipped(plan, "this server does not compile ahead")
        try:
            await self._rate_limit.check(client.key)  # a compile ahead counts as a run
        except RateLimited as exc:
            return _skipped(plan, exc.message)
        run = Run(
            replace(plan, compile_only=True),
            sandbox=self._sandbox,
            settings=self._settings.sandbox,
            owner=_NOBODY,
            terminal=Terminal(),
            observer=self._telemetry.for_client(client.key, via=client.via).prepare(language),
        )
        handle = self._track(run, self._drive_prepare(run, client.key))
        try:
            ended = await handle.outcome()
        except Busy as exc:
            return _skipped(plan, exc.message)
        except asyncio.CancelledError:
            await handle.cancel()
            raise
        return _prepared(plan, ended, kept=run.program_kept)

    def _track(self, run: Run, drive: Coroutine[None, None, Exit]) -> RunHandle:
        task = asyncio.create_task(drive)
        handle = RunHandle(run, task)
        self._runs.add(handle)
        task.add_done_callback(lambda _: self._runs.discard(handle))
        return handle

    def refused(self, client: Client, error: CeError) -> None:
        """Count a refusal that a surface decided itself (auth, a bad body)."""
        self._telemetry.for_client(client.key, via=client.via).refused(error)

    def live_runs(self) -> list[RunHandle]:
        """Every run not yet over (queued, running, or removing its box)."""
        return list(self._runs)

    def get(self, run_id: str) -> RunHandle | None:
        """The live run with this id, if any."""
        return next((handle for handle in self._runs if handle.run_id == run_id), None)

    async def _drive(
        self, run: Run, client_key: str, telemetry: ClientTelemetry, queue_wait_s: float | None
    ) -> Exit:
        try:
            async with self._slot(run, client_key, queue_wait_s):
                return await run.execute()
        except CeError as exc:  # no slot: the line was full, or none came in time
            telemetry.refused(exc)
            with contextlib.suppress(ConnectionError):
                await run.owner.send(error_message(exc, run.plan.correlation_id))
            raise
        except asyncio.CancelledError:
            if run.state is RunState.PENDING and self._closing:
                raise Busy("the server is shutting down; try again later") from None
            raise
        finally:
            run.mark_ended()

    async def _drive_prepare(self, run: Run, client_key: str) -> Exit:
        try:
            with self.admission.spare_slot(
                client_key, share=self._settings.compile_cache.prepare_max_share
            ):
                return await run.execute()
        finally:
            run.mark_ended()

    @contextlib.asynccontextmanager
    async def _slot(
        self, run: Run, client_key: str, queue_wait_s: float | None
    ) -> AsyncIterator[None]:
        """A run slot, waiting in line at most `queue_wait_s` (forever when None)."""

        async def tell_position(position: int) -> None:
            with contextlib.suppress(ConnectionError):
                await run.owner.send(Queued(position=position))

        try:
            async with asyncio.timeout(queue_wait_s) as deadline:
                # The client's place across replicas first: a run waiting for its
                # own runs elsewhere to end holds none of this replica's slots.
                async with (
                    self._cluster_place(run.run_id, client_key, tell_position),
                    self.admission.slot(client_key, on_queued=tell_position),
                ):
                    deadline.reschedule(None)
                    yield
        except TimeoutError:
            if not deadline.expired():
                raise
            raise Busy(
                f"no run slot came free within {queue_wait_s:g} s; try again later"
            ) from None

    @contextlib.asynccontextmanager
    async def _cluster_place(
        self, token: str, client_key: str, tell_position: Callable[[int], Awaitable[None]]
    ) -> AsyncIterator[None]:
        """A place in the client's cap across replicas: waits (polling) while its other
        runs elsewhere fill it; nothing to wait for on one node."""
        if self.shared is None:
            yield
            return
        cap = self._settings.capacity.max_runs_per_client
        told = False
        while not await self.shared.hold("runs", client_key, token, cap):
            if not told:
                await tell_position(1)  # first in its own line, behind its runs elsewhere
                told = True
            await asyncio.sleep(_CLUSTER_RETRY_S)
        try:
            yield
        finally:
            self.shared.release(token)

    async def aclose(self, grace_s: float) -> None:
        """At shutdown: queued runs are refused, running ones end with `error`, bounded.

        Idempotent; after it no run can start.
        """
        self._closing = True
        handles = list(self._runs)
        for handle in handles:
            if handle.state is RunState.PENDING:
                await handle.cancel(timeout_s=0)
            elif not handle.ended:
                await handle.abort("the server is shutting down")
        await asyncio.gather(*(handle.wait_done(grace_s) for handle in handles))
        # Whatever did not end in time is cancelled; its box is still removed.
        await asyncio.gather(*(handle.cancel() for handle in handles if not handle.done()))
        await self._rate_limit.aclose()


class _Nobody:
    """The owner of a `prepare`: no one sees its compile; the run of those files will."""

    async def send(self, message: ServerMessage) -> None:
        pass

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        pass


_NOBODY = _Nobody()


def _skipped(plan: RunPlan, why: str) -> Prepared:
    return Prepared(
        language=plan.language.name, outcome="skipped", message=why, id=plan.correlation_id
    )


_NOT_KEPT = "compiled, but the program is too big for the compile cache: its run compiles it again"


def _prepared(plan: RunPlan, ended: Exit, *, kept: bool) -> Prepared:
    """What a `prepare`'s end means for the run of its files (`kept`: in the compile cache)."""
    outcome: Literal["ready", "compile_error", "failed", "skipped"]
    if ended.status is Status.EXITED:
        outcome = "ready" if kept else "skipped"
        message = None if kept else _NOT_KEPT
    else:
        outcome = "compile_error" if ended.status is Status.COMPILE_ERROR else "failed"
        message = ended.message
    return Prepared(
        language=plan.language.name, outcome=outcome, message=message, id=plan.correlation_id
    )
