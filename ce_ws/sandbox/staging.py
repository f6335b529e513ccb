"""Per-run staging directories: the only way code gets into a container.

The host writes the files once (exclusive create, no symlink following,
read-only modes) before any user code runs, mounts the folder read-only, and
afterwards only removes it. It never reads anything back from it.

The folders live in a shared `/tmp`: the server (root) owns them and the
sandbox reads them through its group, so no other host user can read the code.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from ce_ws.errors import BadMessage, SandboxError, clip
from ce_ws.sandbox.spec import SANDBOX_GID

STAGING_PREFIX = "ce-"
#: A run id (and box id): `uuid4().hex`.
RUN_ID_PATTERN = "[0-9a-f]{32}"
MAX_NAME_BYTES = 255
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
#: Once staged: read (and for the folder, enter) for the owner and the sandbox's group only.
FOLDER_MODE = 0o550
#: A placeholder's content: one empty line (ruby closes an empty main script at once).
PLACEHOLDER = b"\n"
FILE_MODE = 0o440


def check_file_name(name: str) -> None:
    """Refuse any name that is not one plain path component."""
    if (
        not name
        or name in {".", ".."}
        or "/" in name
        or "\0" in name
        or len(name.encode()) > MAX_NAME_BYTES
    ):
        raise BadMessage(f"invalid file name {clip(name)!r}", field="files")


def staging_path(root: str, owner: str, run_id: str) -> Path:
    """`<root>/ce-<owner>-<run_id>`: the owner lets servers sharing a host tell theirs apart."""
    return Path(root) / f"{STAGING_PREFIX}{owner}-{run_id}"


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class StagingDiskFull(SandboxError):
    """The staging folders' filesystem has no room (or no inode) left."""


@contextlib.contextmanager
def _disk_full_is_refused(root: Path) -> Iterator[None]:
    """Turn "no space left" into the run's plain-words `error`; other OS errors stay bugs."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _DISK_FULL:
            raise
        raise StagingDiskFull(
            f"the server's disk is full ({root} has no space left for the program's files):"
            " no run can start until its operator frees space there; try again later"
        ) from exc


class StagingDir:
    """A run's staging folder, created empty; files are added before "go".

    `placeholders` are files the box's launcher opens while it waits
    (a preloaded ruby's main script): the folder is then open to the sandbox
    from the start, and the placeholders go when the program's files come.
    """

    def __init__(
        self, root: str, owner: str, run_id: str, placeholders: tuple[str, ...] = ()
    ) -> None:
        self.path = staging_path(root, owner, run_id)
        self._placeholders = placeholders
        with _disk_full_is_refused(self.path.parent):
            os.mkdir(self.path, 0o700)
        if placeholders:
            self._write([(name, PLACEHOLDER) for name in placeholders])

    def write_files(self, files: list[tuple[str, bytes]]) -> None:
        """Stage the program's files, then open the folder to the sandbox, read-only.

        The folder is 0700 while being written: nothing else can enter it.
        A full disk raises `StagingDiskFull`; the box's removal then deletes
        the folder with whatever part was written.
        """
        self._write(files, replacing=self._placeholders)

    def _write(self, files: list[tuple[str, bytes]], *, replacing: tuple[str, ...] = ()) -> None:
        dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fchmod(dir_fd, 0o700)
            for name in replacing:
                os.unlink(name, dir_fd=dir_fd)
            with _disk_full_is_refused(self.path.parent):
                for name, data in files:
                    check_file_name(name)
                    fd = os.open(name, _FILE_FLAGS, 0o400, dir_fd=dir_fd)
                    with os.fdopen(fd, "wb") as handle:
                        _share_with_sandbox(fd, FILE_MODE)
                        handle.write(data)
                _share_with_sandbox(dir_fd, FOLDER_MODE)
        finally:
            os.close(dir_fd)

    def remove(self) -> None:
        """Delete the folder; called only after its container is gone."""
        shutil.rmtree(self.path, ignore_errors=True)


def _share_with_sandbox(fd: int, mode: int) -> None:
    """Give the sandbox's group `mode`; by descriptor, never by a path."""
    os.fchown(fd, -1, SANDBOX_GID)  # the owner stays the server
    os.fchmod(fd, mode)  # after the chown, which may clear mode bits


def staging_dirs(root: str, owner: str) -> dict[str, Path]:
    """This owner's staging folders by run id (used by the reaper).

    Only `ce-<owner>-<run id>` exactly: a prefix match would take the live
    folders of a server whose id extends this one's (`ce` and `ce-default`).
    """
    shape = re.compile(rf"{re.escape(STAGING_PREFIX)}{re.escape(owner)}-(?P<run>{RUN_ID_PATTERN})")
    found = {}
    for entry in Path(root).iterdir():
        match = shape.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            found[match["run"]] = entry
    return found
