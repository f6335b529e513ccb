"""Judge0 submissions that outlive their request: one task per submission, owned here.

`submit` keeps the submission (In Queue), then a task runs it through the
Runner with a batch collector as its owner and keeps the result; its
status is Processing once the run has started. A client's submissions
start at most `max_runs_per_client` at a time, so a batch waits here
instead of filling the Runner's line. At shutdown every submission
ends: the Runner has ended the running ones, and what is left is
cancelled and kept as Internal Error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ce_ws.api.batch import BatchCollector
from ce_ws.api.compat.judge0_mapping import Judge0Result, Judge0Status, judge0_result
from ce_ws.api.compat.judge0_store import Judge0Submission, SubmissionStore
from ce_ws.api.compat.judge0_wire import ParsedSubmission
from ce_ws.config import Settings
from ce_ws.errors import CeError
from ce_ws.protocol import Exit, ServerMessage, Started
from ce_ws.runs.run import Terminal
from ce_ws.runs.runner import Client, Runner

log = logging.getLogger(__name__)

#: How long, after the shutdown grace, submissions get to keep their results.
_KEEP_RESULTS_S = 10.0


class _Collector(BatchCollector):
    """A batch collector that says when its run has started (In Queue → Processing)."""

    def __init__(self, on_started: Callable[[], None]) -> None:
        super().__init__()
        self._on_started = on_started

    async def send(self, message: ServerMessage) -> None:
        if isinstance(message, Started):
            self._on_started()
        await super().send(message)


@dataclass
class _Live:
    """A submission not yet ended: its latest state and the task that runs it."""

    submission: Judge0Submission
    task: asyncio.Task[None] | None = None

    def processing(self) -> None:
        self.submission = self.submission.model_copy(update={"status": Judge0Status.PROCESSING})


@dataclass
class _ClientSlots:
    semaphore: asyncio.Semaphore
    users: int = field(default=0)


class Judge0Service:
    """Every Judge0 submission of this server: the live ones here, the rest in the store."""

    def __init__(self, *, store: SubmissionStore, runner: Runner, settings: Settings) -> None:
        self._store = store
        self._runner = runner
        self._settings = settings
        self._live: dict[str, _Live] = {}
        self._slots: dict[str, _ClientSlots] = {}

    def has_room(self, count: int) -> bool:
        """Whether `count` more submissions fit in the queue (`max_queue_size`)."""
        return len(self._live) + count <= self._settings.judge0.max_queue

    async def submit(self, parsed: ParsedSubmission, client: Client) -> Judge0Submission:
        """Keep a new submission and start judging it; returns it In Queue."""
        submission = Judge0Submission(
            token=str(uuid.uuid4()),
            language_id=parsed.language.id,
            source_code=parsed.source_code,
            stdin=parsed.stdin,
            expected_output=parsed.expected_output,
            limits=parsed.limits,
            number_of_runs=1,
            command_line_arguments=parsed.command_line_arguments,
            redirect_stderr_to_stdout=parsed.redirect_stderr_to_stdout,
            created_at=datetime.now(UTC),
        )
        await self._store.put(submission)
        live = _Live(submission)
        live.task = asyncio.create_task(self._judge(live, parsed, client))
        self._live[submission.token] = live
        live.task.add_done_callback(lambda _: self._live.pop(submission.token, None))
        return submission

    async def ended(self, submission: Judge0Submission) -> Judge0Submission:
        """The submission once it has ended (`wait=true`); a client leaving does not end it."""
        live = self._live.get(submission.token)
        if live is None or live.task is None:
            return (await self.get_many([submission.token])).get(submission.token, submission)
        await asyncio.shield(live.task)
        return live.submission

    async def get_many(self, tokens: list[str]) -> dict[str, Judge0Submission]:
        """The known submissions among `tokens`, live ones as they are now."""
        found = {token: self._live[token].submission for token in tokens if token in self._live}
        missing = [token for token in tokens if token not in found]
        if missing:
            found.update(await self._store.get_many(missing))
        return found

    async def _judge(self, live: _Live, parsed: ParsedSubmission, client: Client) -> None:
        result = await self._result(live, parsed, client)
        live.submission = live.submission.ended_with(result)
        try:
            await self._store.put(live.submission)
        except Exception:  # the disk: the result is lost, the server goes on
            log.exception("could not keep the result of submission %s", live.submission.token)

    async def _result(self, live: _Live, parsed: ParsedSubmission, client: Client) -> Judge0Result:
        collector = _Collector(on_started=live.processing)
        async with self._client_slot(client.key):
            try:
                handle = await self._runner.start(
                    parsed.run_request(self._settings),
                    owner=collector,
                    client=client,
                    terminal=Terminal(tty=False),
                )
            except CeError as exc:  # refused at start: the rate limit, or shutting down
                return Judge0Result(Judge0Status.INTERNAL_ERROR, message=exc.message)
            try:
                exit_message: Exit = await handle.outcome()
            except CeError as exc:  # no slot: the Runner's line was full
                return Judge0Result(Judge0Status.INTERNAL_ERROR, message=exc.message)
            except asyncio.CancelledError:
                await handle.cancel()
                raise
        return judge0_result(
            collector.response(exit_message, handle.language),
            expected_output=parsed.expected_output,
            redirect_stderr=parsed.redirect_stderr_to_stdout,
        )

    @contextlib.asynccontextmanager
    async def _client_slot(self, key: str) -> AsyncIterator[None]:
        """One of the client's `max_runs_per_client` run slots, waited for here."""
        per_client = self._settings.capacity.max_runs_per_client
        slots = self._slots.setdefault(key, _ClientSlots(asyncio.Semaphore(per_client)))
        slots.users += 1
        try:
            async with slots.semaphore:
                yield
        finally:
            slots.users -= 1
            if not slots.users:
                del self._slots[key]

    async def start(self) -> None:
        """At startup: the store ends what this server left unfinished, if it can now."""
        try:
            await self._store.start()
        except CeError as exc:  # Redis down: its first use later ends them instead
            log.warning("Judge0 submissions left by an earlier run not ended yet: %s", exc)

    async def aclose(self, grace_s: float) -> None:
        """At shutdown, after the Runner: let results be kept (bounded), end the rest, close."""
        tasks = [live.task for live in self._live.values() if live.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s + _KEEP_RESULTS_S)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._store.end_unfinished()
        except CeError as exc:  # Redis away: the next start ends them instead
            log.warning("Judge0 submissions left unfinished at shutdown: %s", exc)
        except Exception:  # the disk: the next start ends them instead
            log.exception("could not end the unfinished Judge0 submissions")
        await self._store.aclose()
