"""What this test session's servers leave on the engine and in /tmp, and how to find it.

Every server the suite starts uses `TEST_SERVER_ID` (unique per session) as
its owner label, or `<TEST_SERVER_ID>-<suffix>` when it runs beside another;
its staging folders are `/tmp/ce-<owner>-<run>`, its compile cache
`/tmp/ce-cache-<owner>` (removed at shutdown).
"""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

from tests.helpers import wait_until

OWNER_LABEL = "ce.owner"
TEST_SERVER_ID = f"ce-test-{os.getpid()}"
STAGING_GLOB = f"/tmp/ce-{TEST_SERVER_ID}-*/"  # folders only
CACHE_GLOBS = (f"/tmp/ce-cache-{TEST_SERVER_ID}/", f"/tmp/ce-cache-{TEST_SERVER_ID}-*/")
_SETTLE_S = 5.0


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


def project_networks() -> list[str]:
    """Names of every network this session's servers created (run networks, egress ones)."""
    result = subprocess.run(
        [
            "docker",
            "network",
            "ls",
            "--filter",
            f"label={OWNER_LABEL}",
            "--format",
            f'{{{{.Name}}}} {{{{.Label "{OWNER_LABEL}"}}}}',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = (line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return [network for network, owner in rows if is_ours(owner)]


def leftovers(*, caches: bool = True) -> tuple[list[str], list[str]]:
    """Containers and networks (together), and staging and cache folders, of this session.

    A compile cache's folder lives as long as its server: between two tests a
    module's server may still hold one, so a check after a test leaves caches
    out (`caches=False`); the session's last check and a server's exit
    (`server_process`) count them.
    """
    patterns = (STAGING_GLOB, *CACHE_GLOBS) if caches else (STAGING_GLOB,)
    folders = [path for pattern in patterns for path in glob.glob(pattern)]
    return project_containers() + project_networks(), folders


def cache_folder(server_id: str) -> Path:
    """Where a server of this id keeps its compile cache."""
    return Path(f"/tmp/ce-cache-{server_id}")


def wait_until_clean(
    timeout_s: float = _SETTLE_S, *, caches: bool = True
) -> tuple[list[str], list[str]]:
    """Leftovers after giving in-flight cleanups up to `timeout_s` to finish."""
    wait_until(lambda: not any(leftovers(caches=caches)), timeout_s=timeout_s)
    return leftovers(caches=caches)
