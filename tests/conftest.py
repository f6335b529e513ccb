"""The engine guards, for the suites that use the engine (never for tests/unit).

Nothing here is autouse: the integration, hostile and browser conftests each
have an autouse fixture that requests `engine_guard`, so `tests/unit` runs
on a machine without Docker.

- `engine_session` (once per session) fails loudly when no engine answers,
  ASSERTS that nothing of this session's servers remains before and after,
  and records every container those servers create (in-process through the
  sandbox's creation hook, in subprocesses through `tests.spec_recorder`); at
  the end it checks, against the engine's own `create` events, that no
  container escaped the recording and that each one followed the spec.
- `engine_guard` (per test) fails the test that created a container departing
  from the container spec (tests/container_spec.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import spec_recorder
from tests.container_spec import violations
from tests.leftovers import TEST_SERVER_ID, is_ours, leftovers, wait_until_clean

#: Containers a test creates itself, not through a server (not judged by the spec).
TEST_MADE_RUN_LABELS = {"orphan", "image-test"}
_EVENTS_SETTLE_S = 1.0


class SpecRecorder:
    """Containers created during the session, in-process and by subprocess servers."""

    def __init__(self, record_file: Path) -> None:
        self.record_file = record_file
        self._in_process: list[spec_recorder.Record] = []

    def add(self, record: spec_recorder.Record) -> None:
        self._in_process.append(record)

    def records(self) -> list[spec_recorder.Record]:
        return self._in_process + spec_recorder.read_file(self.record_file)

    def failures(self, records: list[spec_recorder.Record]) -> list[str]:
        found = []
        for record in records:
            if record.error is not None:
                found.append(f"{record.container_id[:12]}: {record.error}")
            elif record.info is not None:
                bad = violations(record.body, record.info, owner=TEST_SERVER_ID)
                found += [f"{record.container_id[:12]}: {item}" for item in bad]
        return found


def _engine_must_answer() -> None:
    """Fail loudly (never skip) when there is no engine to test against."""
    result = subprocess.run(
        ["docker", "info", "--format", "{{json .ServerVersion}}"], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.exit(
            "Docker engine not reachable: run `make test` as root (it starts dockerd) "
            f"or start dockerd yourself.\n{result.stderr}",
            returncode=3,
        )
    json.loads(result.stdout)


def _sweep_and_assert_clean() -> None:
    containers, staging = wait_until_clean()
    for container in containers:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    for path in staging:
        shutil.rmtree(path, ignore_errors=True)
    assert (containers, staging) == ([], []), f"left behind: {containers} {staging}"


def _assert_recording_complete(recorder: SpecRecorder, created: dict[str, dict[str, str]]) -> None:
    recorded = {record.container_id for record in recorder.records()}
    escaped = {
        cid: attributes.get("ce.run")
        for cid, attributes in created.items()
        if cid not in recorded and attributes.get("ce.run") not in TEST_MADE_RUN_LABELS
    }
    assert not escaped, f"containers created without being recorded: {escaped}"
    # The watcher follows the main engine; the fault tests' scratch engine is their own.
    unseen = [
        r.container_id[:12]
        for r in recorder.records()
        if r.container_id not in created and r.engine == spec_recorder.MAIN_ENGINE
    ]
    assert not unseen, f"the events watcher missed containers the recorder saw: {unseen}"
    failures = recorder.failures(recorder.records())
    assert not failures, "containers departing from the spec:\n" + "\n".join(failures)


@pytest.fixture(scope="session")
def engine_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpecRecorder]:
    """A reachable engine, nothing left behind, and every container recorded."""
    _engine_must_answer()
    before = leftovers()
    assert before == ([], []), f"leftovers from an earlier run, clean them first: {before}"
    recorder = SpecRecorder(tmp_path_factory.mktemp("spec") / "containers.jsonl")
    os.environ[spec_recorder.RECORD_ENV] = str(recorder.record_file)
    watcher = spec_recorder.CreationWatcher(is_ours)
    time.sleep(_EVENTS_SETTLE_S)  # let `docker events` subscribe first
    try:
        yield recorder
    finally:
        time.sleep(_EVENTS_SETTLE_S)
        created = watcher.stop()
        _sweep_and_assert_clean()
    _assert_recording_complete(recorder, created)


@pytest.fixture
def engine_guard(engine_session: SpecRecorder) -> Iterator[SpecRecorder]:
    """Fail the test that created a container departing from the spec."""
    seen = {record.container_id for record in engine_session.records()}
    yield engine_session
    new = [r for r in engine_session.records() if r.container_id not in seen]
    failures = engine_session.failures(new)
    assert not failures, "containers departing from the spec:\n" + "\n".join(failures)
