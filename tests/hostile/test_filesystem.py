"""Corpus groups 2 and 8: planting links and filling disks.

The harness already proves the staging folder's content never changes and
that it is removed after the run; these tests add what the program saw and
that a host file the program aimed its links at is untouched.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.harness import Corpus, staging_dir
from tests.integration.terminal import TermClient

PROGRAMS = Path(__file__).parent / "programs"


@pytest.fixture
def host_target() -> Iterator[Path]:
    """A host file beside the staging folders, which programs aim links at."""
    folder = Path(f"/tmp/ce-hostile-target-{uuid.uuid4().hex}")
    folder.mkdir()
    target = folder / "keep"
    target.write_text("host data")
    yield target
    shutil.rmtree(folder)


PLANTING = {
    "runc": {
        **dict.fromkeys(
            (
                "symlink_work",
                "hardlink_work",
                "rename_work",
                "unlink_work",
                "chmod_work",
                "write_via_work_link",
            ),
            "EROFS",
        ),
        "write_entry": "EACCES",  # the file is 0440 (checked before the mount)
    },
    # gVisor checks permissions (root-owned, 0550/0440) before the read-only
    # mount for some of these, so they fail with EACCES or EPERM instead.
    "runsc": {
        **dict.fromkeys(("symlink_work", "hardlink_work", "rename_work"), "EROFS"),
        **dict.fromkeys(("unlink_work", "write_entry", "write_via_work_link"), "EACCES"),
        "chmod_work": "EPERM",
    },
}


async def test_links_planted_in_work_and_tmp_reach_nothing(
    corpus: Corpus, host_target: Path
) -> None:
    """Group 2: EROFS in /work; /tmp links stay in the sandbox; the host file is untouched."""
    code = (PROGRAMS / "planting.py").read_text()
    outcome = await corpus.attack("python", code, args=[str(host_target)])
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.text()
    facts = outcome.facts()
    expected = PLANTING[corpus.runtime] | {
        "symlink_tmp": "ok",  # the sandbox's own tmpfs...
        "write_through_symlink": "ENOENT",  # ...where the host path does not exist
        "symlink_to_work": "ok",
        "hardlink_tmp": "EXDEV",
        "renames": "many",
        "done": "yes",
    }
    assert {key: facts.get(key) for key in expected} == expected
    assert host_target.read_text() == "host data"
    assert sorted(p.name for p in host_target.parent.iterdir()) == ["keep"]


DISK = {
    "runc": {
        "write_root": "EROFS",
        "write_work": "EROFS",
        "many_files": "ENOSPC",  # the tmpfs's 4096 inodes
        "small_files": "thousands",
    },
    "runsc": {
        "write_root": "EACCES",
        "write_work": "EACCES",
        # gVisor's tmpfs ignores nr_inodes: the files are bounded only by the
        # run's memory (100k empty files fit).
        "many_files": "ok",
        "small_files": "100000",
    },
}


async def test_disk_writes_hit_read_only_size_and_inode_limits(corpus: Corpus) -> None:
    """Group 8: EROFS, a file capped at 16 MiB (EFBIG, SIGXFSZ), ENOSPC on size (and inodes)."""
    outcome = await corpus.attack("python", (PROGRAMS / "disk.py").read_text())
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.text()
    facts = outcome.facts()
    expected = DISK[corpus.runtime] | {
        "write_home": "ok",  # $HOME is the run's own /tmp
        "big_file": "EFBIG",
        "big_file_mib": "16",  # the fsize limit
        "head_returncode": str(128 + 25),  # the shell reports SIGXFSZ
        "fill_tmp": "ENOSPC",  # the 64 MiB tmpfs
        "done": "yes",
    }
    assert {key: facts.get(key) for key in expected} == expected


async def test_a_binary_dropped_in_tmp_does_not_run_for_an_interpreted_language(
    corpus: Corpus,
) -> None:
    """Group 8: /tmp is `noexec` unless the language compiles into it.

    Executing the file is refused on both runtimes. Loading it through the
    dynamic loader is refused by the host kernel (runc) but not by gVisor,
    whose mmap ignores `noexec`: there `noexec` only stops `execve`.
    """
    code = (
        "cp /bin/true /tmp/mine && chmod +x /tmp/mine && echo copied\n"
        "/tmp/mine; echo exec=$?\n"
        "/lib64/ld-linux-x86-64.so.2 /tmp/mine; echo loader=$?\n"
    )
    outcome = await corpus.attack("bash", code)
    facts = dict(
        line.split("=", 1) for line in outcome.text().replace("\r", "").splitlines() if "=" in line
    )
    assert "copied" in outcome.text(), outcome.text()
    assert facts["exec"] == "126", outcome.text()  # Permission denied
    loader_runs_it = corpus.runtime == "runsc"
    assert (facts["loader"] == "0") is loader_runs_it, outcome.text()


#: A host user that is neither root nor the sandbox's 65534 (nobody on Debian).
OTHER_HOST_UID = 12345
READS_ITS_FILES = """import os
print("listing=" + ",".join(os.listdir("/work")))
print("own_source=" + str(open("/work/main.py").read() == open(__file__).read()))
input("ready> ")
"""


def as_other_host_user(*argv: str) -> str:
    """Run `argv` as another host user; its stderr, or "ok" when it succeeded."""
    result = subprocess.run(
        argv,
        user=OTHER_HOST_UID,
        group=OTHER_HOST_UID,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
    )
    return "ok" if result.returncode == 0 else result.stderr


async def test_the_staging_folder_is_closed_to_other_host_users_yet_read_by_the_program(
    corpus: Corpus,
) -> None:
    """In the shared /tmp only root and the sandbox's group read a run's code.

    The harness checks the owners and modes every 50 ms; here another host
    uid is refused while the run lives, and the program reads its own files.
    """
    seen: dict[str, str] = {}

    async def while_it_lives(term: TermClient) -> None:
        await term.expect(b"ready> ")
        started = next(m for m in term.messages if m["type"] == "started")
        folder = staging_dir(started["run_id"])
        seen["list"] = await asyncio.to_thread(as_other_host_user, "ls", str(folder))
        seen["read"] = await asyncio.to_thread(as_other_host_user, "cat", str(folder / "main.py"))
        await term.keys("\r")

    outcome = await corpus.attack("python", READS_ITS_FILES, during=while_it_lives)
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.text()
    facts = outcome.facts()
    assert (facts.get("listing"), facts.get("own_source")) == ("main.py", "True"), outcome.text()
    assert "Permission denied" in seen["list"], seen
    assert "Permission denied" in seen["read"], seen
