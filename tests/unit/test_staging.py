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


def test_a_placeholder_waits_open_to_the_sandbox_and_the_programs_files_replace_it(
    tmp_path: Path,
) -> None:
    """A preloaded ruby's box: its main.rb exists from the start, then the program's."""
    staging = StagingDir(str(tmp_path), "srv", uuid.uuid4().hex, ("main.rb",))
    assert owner_and_mode(staging.path) == (os.geteuid(), 65534, 0o550)
    assert owner_and_mode(staging.path / "main.rb") == (os.geteuid(), 65534, 0o440)
    with open(staging.path / "main.rb", "rb") as held:  # as the waiting ruby holds it
        staging.write_files([("main.rb", b"puts 1"), ("lib.rb", b"")])
        assert held.read() == b"\n"  # a file of its own, not the program's
    assert sorted(os.listdir(staging.path)) == ["lib.rb", "main.rb"]
    assert (staging.path / "main.rb").read_bytes() == b"puts 1"
    assert owner_and_mode(staging.path) == (os.geteuid(), 65534, 0o550)


def test_a_placeholder_the_program_does_not_name_is_gone_before_it_runs(tmp_path: Path) -> None:
    staging = StagingDir(str(tmp_path), "srv", uuid.uuid4().hex, ("main.rb",))
    staging.write_files([("solution.rb", b"puts 1")])
    assert os.listdir(staging.path) == ["solution.rb"]
