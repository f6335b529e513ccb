"""The staging filesystem full: the run is refused in plain words, nothing stays.

A small tmpfs (mounted as root, as the server runs) is the staging root;
a filler file takes all of it before the run.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID


def fill(path: Path) -> int:
    """Write `path` until the filesystem refuses; the refusal's errno (0: it never did)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(1024):  # 1024 x 4 KiB is four times the whole tmpfs
            os.write(fd, b"\1" * 4096)
    except OSError as exc:
        return exc.errno or 0
    finally:
        os.close(fd)
    return 0


@pytest.fixture
def full_staging_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "staging"
    root.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0711", "tmpfs", str(root)], check=True
    )
    try:
        assert fill(root / "filler") == errno.ENOSPC
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)


def staged_files(root: Path) -> dict[str, list[str]]:
    """This server's staging folders and the files in each."""
    folders = (entry for entry in root.iterdir() if entry.name.startswith(f"ce-{TEST_SERVER_ID}-"))
    return {folder.name: sorted(f.name for f in folder.iterdir()) for folder in folders}


@pytest.mark.parametrize("pool", [False, True], ids=["cold", "warm"])
async def test_a_full_staging_disk_refuses_the_run_and_leaves_nothing(
    full_staging_root: Path, make_client: MakeClient, pool: bool
) -> None:
    client = await make_client(
        sandbox={"staging_root": str(full_staging_root)},
        pool={"enabled": pool, "per_profile": 1, "max_total": 1},
    )
    async with TermClient.connect(client) as term:
        exit_message = await term.run("python", "print('never staged')" + "#" * 8192)
    assert exit_message["type"] == "exit" and exit_message["status"] == "error", exit_message
    assert "disk is full" in exit_message["message"], exit_message
    assert "try again later" in exit_message["message"]
    # The run's folder is gone; what remains is at most the pool's next, still empty, box.
    remaining = await asyncio.to_thread(staged_files, full_staging_root)
    assert exit_message["run_id"] not in "".join(remaining), remaining
    assert all(files == [] for files in remaining.values()), remaining
    assert len(remaining) <= (1 if pool else 0), remaining

    # Space freed: the same server runs the next program.
    (full_staging_root / "filler").unlink()
    async with TermClient.connect(client) as term:
        ok = await term.run_to_exit("python", "print('staged now')")
    assert ok["status"] == "exited" and ok["exit_code"] == 0, ok
    assert b"staged now" in term.output
