"""Per-run staging directories: the only way code gets into a container.

The host writes the files once (exclusive create, no symlink following,
read-only modes) before any user code runs, mounts the folder read-only, and
afterwards only removes it. It never reads anything back from it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ce_ws.errors import BadMessage, clip

STAGING_PREFIX = "ce-"
MAX_NAME_BYTES = 255
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


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


class StagingDir:
    """A run's staging folder, created empty; files are added before "go"."""

    def __init__(self, root: str, owner: str, run_id: str) -> None:
        self.path = staging_path(root, owner, run_id)
        os.mkdir(self.path, 0o700)

    def write_files(self, files: list[tuple[str, bytes]]) -> None:
        """Stage the program's files, then make the folder read-only to all."""
        dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            for name, data in files:
                check_file_name(name)
                fd = os.open(name, _FILE_FLAGS, 0o444, dir_fd=dir_fd)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            os.fchmod(dir_fd, 0o555)
        finally:
            os.close(dir_fd)

    def remove(self) -> None:
        """Delete the folder; called only after its container is gone."""
        shutil.rmtree(self.path, ignore_errors=True)


def staging_dirs(root: str, owner: str) -> list[Path]:
    """This owner's staging folders (used by the reaper)."""
    return [
        entry
        for entry in Path(root).glob(f"{STAGING_PREFIX}{owner}-*")
        if entry.is_dir() and not entry.is_symlink()
    ]
