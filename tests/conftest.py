"""Suite-wide guards: a reachable engine, and nothing left behind.

Every server this suite starts uses `TEST_SERVER_ID` (unique per session) as
its owner label, and its staging folders are `/tmp/ce-<owner>-<run>`. The leak
guard first ASSERTS that none of this session's containers or staging
folders remains, and only then sweeps, so a leak fails the run instead of
being quietly tidied. Scoping by owner keeps a developer's own `make run`
(or a second suite) from failing this one.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

OWNER_LABEL = "ce.owner"
TEST_SERVER_ID = f"ce-test-{os.getpid()}"
STAGING_GLOB = f"/tmp/ce-{TEST_SERVER_ID}-*/"  # folders only
_SETTLE_S = 5.0


def project_containers() -> list[str]:
    """IDs of every container this session's servers created."""
    result = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={OWNER_LABEL}={TEST_SERVER_ID}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split()


def run_remains(run_id: str) -> tuple[list[str], bool]:
    """The containers labelled with this run, and whether its staging folder exists."""
    result = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=ce.run={run_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.split(), os.path.isdir(f"/tmp/ce-{TEST_SERVER_ID}-{run_id}")


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
