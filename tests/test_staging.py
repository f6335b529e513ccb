"""Staging folders: which names the reaper takes for one server's own."""

from __future__ import annotations

import uuid
from pathlib import Path

from ce_ws.sandbox.staging import staging_dirs


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
