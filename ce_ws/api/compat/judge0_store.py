"""Judge0 submissions and their results in an embedded SQLite database.

A token answers for as long as its submission is kept, across restarts:
retention is bounded by count and by age (`CE_JUDGE0__*`). Every database
call runs on the store's one thread, which owns the connection, so the
event loop never waits on the disk; the file is opened on first use, so a
server whose Judge0 surface is never used creates nothing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from ce_ws.api.compat.judge0_mapping import Judge0Limits, Judge0Result, Judge0Status
from ce_ws.config import Judge0Settings

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    token TEXT PRIMARY KEY,
    created REAL NOT NULL,
    ended INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_by_age ON submissions (created);
"""
#: The message of a submission that was not over when its server stopped.
INTERRUPTED = "the server stopped before this submission ended"


class Judge0Submission(BaseModel):
    """One submission as Judge0 keeps it: what was asked, and (once ended) its result."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    token: str
    language_id: int
    source_code: bytes
    stdin: bytes | None
    expected_output: bytes | None
    limits: Judge0Limits
    number_of_runs: int
    command_line_arguments: str | None
    redirect_stderr_to_stdout: bool
    created_at: datetime
    status: Judge0Status = Judge0Status.IN_QUEUE
    finished_at: datetime | None = None
    time: float | None = None
    wall_time: float | None = None
    memory: int | None = None
    stdout: bytes | None = None
    stderr: bytes | None = None
    compile_output: bytes | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    message: str | None = None

    def ended_with(self, result: Judge0Result) -> Judge0Submission:
        """This submission with its result, finished now."""
        return self.model_copy(
            update={
                "status": result.status,
                "finished_at": datetime.now(UTC),
                "time": result.time,
                "wall_time": result.wall_time,
                "memory": result.memory,
                "stdout": result.stdout,
                "stderr": result.stderr,
                "compile_output": result.compile_output,
                "exit_code": result.exit_code,
                "exit_signal": result.exit_signal,
                "message": result.message,
            }
        )


class SubmissionStore(Protocol):
    """Where submissions are kept: this file (one server), or Redis (every replica)."""

    async def start(self) -> None:
        """At startup; a store that opens lazily does nothing yet."""

    async def put(self, submission: Judge0Submission) -> None: ...

    async def get_many(self, tokens: list[str]) -> dict[str, Judge0Submission]: ...

    async def end_unfinished(self) -> None: ...

    async def aclose(self) -> None: ...


class Judge0Store:
    """The submissions database: one thread, one connection, bounded retention."""

    def __init__(self, settings: Judge0Settings) -> None:
        self._settings = settings
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge0-store")
        self._connection: sqlite3.Connection | None = None

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: work(self._open()))

    def _open(self) -> sqlite3.Connection:
        """The connection (on the store's thread); opening it ends what a stop interrupted."""
        if self._connection is None:
            connection = sqlite3.connect(self._settings.database)
            connection.executescript(_SCHEMA)
            self._connection = connection
            self._end_unfinished(connection)
        return self._connection

    async def start(self) -> None:
        """Nothing yet: the file is opened (and its leftovers ended) on first use."""

    async def put(self, submission: Judge0Submission) -> None:
        """Insert or replace a submission, then forget what retention lets go."""
        await self._call(lambda connection: self._put(connection, submission))

    def _put(self, connection: sqlite3.Connection, submission: Judge0Submission) -> None:
        with connection:
            connection.execute(
                "INSERT OR REPLACE INTO submissions (token, created, ended, record) "
                "VALUES (?, ?, ?, ?)",
                (
                    submission.token,
                    submission.created_at.timestamp(),
                    int(submission.status.ended),
                    submission.model_dump_json(),
                ),
            )
            self._forget_old(connection)

    def _forget_old(self, connection: sqlite3.Connection) -> None:
        oldest = time.time() - self._settings.max_age_s
        connection.execute("DELETE FROM submissions WHERE created < ?", (oldest,))
        # Through the index: the first one past the newest `max_submissions`, and all older.
        connection.execute(
            "DELETE FROM submissions WHERE created <= "
            "(SELECT created FROM submissions ORDER BY created DESC LIMIT 1 OFFSET ?)",
            (self._settings.max_submissions,),
        )

    async def get_many(self, tokens: list[str]) -> dict[str, Judge0Submission]:
        """The kept submissions among `tokens`, by token."""
        return await self._call(lambda connection: self._get_many(connection, tokens))

    def _get_many(
        self, connection: sqlite3.Connection, tokens: list[str]
    ) -> dict[str, Judge0Submission]:
        marks = ",".join("?" * len(tokens))
        rows = connection.execute(
            f"SELECT record FROM submissions WHERE token IN ({marks})",
            tokens,
        ).fetchall()
        found = (Judge0Submission.model_validate_json(record) for (record,) in rows)
        return {submission.token: submission for submission in found}

    async def end_unfinished(self) -> None:
        """At shutdown: what did not end is Internal Error, so no token stays In Queue."""
        if self._connection is not None:  # never opened: nothing to end
            await self._call(self._end_unfinished)

    def _end_unfinished(self, connection: sqlite3.Connection) -> None:
        rows = connection.execute("SELECT record FROM submissions WHERE ended = 0").fetchall()
        result = Judge0Result(Judge0Status.INTERNAL_ERROR, message=INTERRUPTED)
        for (record,) in rows:
            self._put(connection, Judge0Submission.model_validate_json(record).ended_with(result))

    async def aclose(self) -> None:
        """Close the connection and end the thread; idempotent."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await asyncio.get_running_loop().run_in_executor(self._thread, connection.close)
        self._thread.shutdown(wait=False)
