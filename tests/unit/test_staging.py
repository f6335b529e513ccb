"""Staging folders: who may read them, and which names the reaper takes for its own."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

from ce_ws.sandbox.staging import StagingDir, staging_dirs


def test_only_folders_of_exactly_this_owner_and_one_run_id_are_its_own(tmp_path: Path) -> None:
    run = uuid.uuid4().hex
    names = {
        f"ce-srv-{run}": True,
        f"ce-srv-other-{run}": False,  # server `srv-other`
        f"ce-srv-{run[:31]}": False,
        f"ce-srv-{run.upper()}": False,
        f"ce-srv-{run}x": False,
        f"ce-srv-{run}-{run}": False,
        f"ce-sr-{run}": False,
    }
    for name in names:
        (tmp_path / name).mkdir()
    (tmp_path / f"ce-srv-{uuid.uuid4().hex}").write_text("a file, not a folder")
    found = staging_dirs(str(tmp_path), "srv")
    assert found == {run: tmp_path / f"ce-srv-{run}"}


def owner_and_mode(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def test_staged_files_are_readable_by_their_owner_and_the_sandboxs_group_only(
    tmp_path: Path,
) -> None:
    """Root (the server) owns them, group 65534 (the container's) reads, others nothing."""
    staging = StagingDir(str(tmp_path), "srv", uuid.uuid4().hex)
    staging.write_files([("main.py", b"print(1)"), ("lib.py", b"")])
    assert owner_and_mode(staging.path) == (os.geteuid(), 65534, 0o550)
    for name in ("main.py", "lib.py"):
        assert owner_and_mode(staging.path / name) == (os.geteuid(), 65534, 0o440)
    assert (staging.path / "main.py").read_bytes() == b"print(1)"
    staging.remove()
    assert not staging.path.exists()
