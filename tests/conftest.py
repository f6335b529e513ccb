"""Suite-wide guards: a reachable engine, and nothing left behind.

Every server this suite starts uses `TEST_SERVER_ID` (unique per session) as
its owner label, and its staging folders are `/tmp/ce-<owner>-<run>`. The leak
guard first ASSERTS that none of this session's containers or staging
folders remains, and only then sweeps, so a leak fails the run instead of
being quietly tidied. Scoping by owner keeps a developer's own `make run`
(or a second suite) from failing this one.

The spec recorder inspects every container any server of this session
creates (in-process or as a subprocess) and fails the test that created one
departing from the container spec (tests/container_spec.py); at the end it
checks, against the engine's own `create` events, that no container escaped
the recording.
"""

from __future__ import annotations

import glob
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

OWNER_LABEL = "ce.owner"
TEST_SERVER_ID = f"ce-test-{os.getpid()}"
STAGING_GLOB = f"/tmp/ce-{TEST_SERVER_ID}-*/"  # folders only
_SETTLE_S = 5.0
#: Containers a test creates itself with the docker CLI (not judged by the spec).
CLI_MADE_RUN_LABELS = {"orphan"}
_EVENTS_SETTLE_S = 1.0


def is_ours(owner: str) -> bool:
    """Whether a server of this session used this owner id (servers in their own
    process get `<TEST_SERVER_ID>-p<port>`, so no two live servers reap each other)."""
    return owner == TEST_SERVER_ID or owner.startswith(f"{TEST_SERVER_ID}-")


def project_containers() -> list[str]:
    """IDs of every container this session's servers created."""
    result = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label={OWNER_LABEL}",
            "--format",
            f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = (line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return [container for container, owner in rows if is_ours(owner)]


def staging_folder(run_id: str) -> Path | None:
    """A run's staging folder, whichever of this session's servers made it."""
    found = glob.glob(f"/tmp/ce-{TEST_SERVER_ID}-*{run_id}")
    return Path(found[0]) if found else None


def run_remains(run_id: str) -> tuple[list[str], bool]:
    """The containers labelled with this run, and whether its staging folder exists."""
    result = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=ce.run={run_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split(), staging_folder(run_id) is not None


def leftovers() -> tuple[list[str], list[str]]:
    return project_containers(), glob.glob(STAGING_GLOB)


def wait_until_clean(timeout_s: float = _SETTLE_S) -> tuple[list[str], list[str]]:
    """Leftovers after giving in-flight cleanups up to `timeout_s` to finish."""
    deadline = time.monotonic() + timeout_s
    found = leftovers()
    while any(found) and time.monotonic() < deadline:
        time.sleep(0.2)
        found = leftovers()
    return found


@pytest.fixture(scope="session", autouse=True)
def engine_is_reachable() -> None:
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


@pytest.fixture(scope="session", autouse=True)
def nothing_lingers() -> Iterator[None]:
    """Assert at the end of the session that every run was cleaned up."""
    before = leftovers()
    assert before == ([], []), f"leftovers from an earlier run, clean them first: {before}"
    yield
    containers, staging = wait_until_clean()
    for container in containers:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
    for path in staging:
        shutil.rmtree(path, ignore_errors=True)
    assert (containers, staging) == ([], []), f"left behind: {containers} {staging}"


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
            elif record.by_server and record.info is not None:
                bad = violations(record.body, record.info, owner=TEST_SERVER_ID)
                found += [f"{record.container_id[:12]}: {item}" for item in bad]
        return found


@pytest.fixture(scope="session", autouse=True)
def spec_recorder_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpecRecorder]:
    """Record every container of the session; at the end, prove none escaped."""
    recorder = SpecRecorder(tmp_path_factory.mktemp("spec") / "containers.jsonl")
    os.environ[spec_recorder.RECORD_ENV] = str(recorder.record_file)
    watcher = spec_recorder.CreationWatcher(is_ours)
    spec_recorder.install(recorder.add)
    time.sleep(_EVENTS_SETTLE_S)  # let `docker events` subscribe first
    try:
        yield recorder
    finally:
        spec_recorder.uninstall()
        time.sleep(_EVENTS_SETTLE_S)
        created = watcher.stop()
    recorded = {record.container_id for record in recorder.records()}
    escaped = {
        cid: attributes.get("ce.run")
        for cid, attributes in created.items()
        if cid not in recorded and attributes.get("ce.run") not in CLI_MADE_RUN_LABELS
    }
    assert not escaped, f"containers created without being recorded: {escaped}"
    unseen = [
        r.container_id[:12]
        for r in recorder.records()
        if r.by_server and r.container_id not in created
    ]
    assert not unseen, f"the events watcher missed containers the recorder saw: {unseen}"
    failures = recorder.failures(recorder.records())
    assert not failures, "containers departing from the spec:\n" + "\n".join(failures)


@pytest.fixture(autouse=True)
def containers_follow_the_spec(spec_recorder_session: SpecRecorder) -> Iterator[None]:
    """Fail the test that created a container departing from the spec."""
    seen = {record.container_id for record in spec_recorder_session.records()}
    yield
    new = [r for r in spec_recorder_session.records() if r.container_id not in seen]
    failures = spec_recorder_session.failures(new)
    assert not failures, "containers departing from the spec:\n" + "\n".join(failures)
