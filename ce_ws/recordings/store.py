"""Where recordings live: unguessable names in one folder, kept within a size and age budget.

A recording is written as `<id>.cast.part` and renamed to `<id>.cast` when
its run ends, so only finished recordings are ever served. `<id>` is 128
random bits in hex: the only names `find` accepts are exactly that, so
nothing else in the folder (and nothing outside it) is reachable. The
oldest go first, by age (`max_age_s`) and by total size (`max_bytes`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from ce_ws.config import RecordingsSettings
from ce_ws.recordings.asciicast import Recorder

log = logging.getLogger(__name__)

RECORDING_ID_BYTES = 16
SUFFIX = ".cast"
_PART = ".part"
_NAME = re.compile(r"^[0-9a-f]{32}\.cast$")
#: Where a finished recording is served (`exit.recording`).
URL_PREFIX = "/api/v1/recordings/"


@dataclass(frozen=True, slots=True)
class _Kept:
    path: Path
    mtime: float
    size: int


class RecordingStore:
    """The recordings folder: new recorders, finished files, the budget."""

    def __init__(self, settings: RecordingsSettings) -> None:
        self._settings = settings
        self._dir = Path(settings.dir).resolve()

    def open(self) -> None:
        """At startup: the folder exists (private), leftovers of a crash are gone, budget kept."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for part in self._dir.glob(f"*{SUFFIX}{_PART}"):
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
        self.prune()

    def recorder(self) -> tuple[Recorder, str]:
        """A recorder for a new run, and the URL its recording will have."""
        recording_id = secrets.token_hex(RECORDING_ID_BYTES)
        final = self._dir / f"{recording_id}{SUFFIX}"
        part = final.with_name(final.name + _PART)

        def done(kept: bool) -> None:
            if kept:
                try:
                    os.replace(part, final)
                except FileNotFoundError:  # swept meanwhile (a second server's startup)
                    return
                self.prune()
            else:
                with contextlib.suppress(FileNotFoundError):
                    part.unlink()

        recorder = Recorder(part, max_bytes=self._settings.max_bytes, on_done=done)
        return recorder, f"{URL_PREFIX}{recording_id}{SUFFIX}"

    def find(self, name: str) -> Path | None:
        """The finished recording called `name` (`<id>.cast`), unless expired or not one."""
        if not _NAME.fullmatch(name):
            return None
        path = self._dir / name
        try:
            stat = path.lstat()
        except FileNotFoundError:
            return None
        if not path.is_file() or path.is_symlink():
            return None
        if time.time() - stat.st_mtime > self._settings.max_age_s:
            self.prune()
            return None
        return path

    def prune(self) -> None:
        """Delete expired recordings, then the oldest while over the size budget."""
        now = time.time()
        kept: list[_Kept] = []
        for path in self._dir.glob(f"*{SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                stat = path.lstat()
                if now - stat.st_mtime > self._settings.max_age_s:
                    path.unlink()
                else:
                    kept.append(_Kept(path, stat.st_mtime, stat.st_size))
        kept.sort(key=lambda entry: entry.mtime)
        total = sum(entry.size for entry in kept)
        for entry in kept:
            if total <= self._settings.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()
            total -= entry.size
            log.info("recording %s deleted: over the size budget", entry.path.name)
