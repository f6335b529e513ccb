"""The compile cache: a compiled program kept for the next run of the same files.

A key is the image recipe, the compile command (the language's compiler and
its flags) and every staged file (name and bytes); a run whose key is known skips
its compile stage. The host never reads a file a sandbox wrote (the lesson of
Judge0's CVE-2024-28185): the program reaches the cache as the bytes the
launcher streams out of a box in which no user code has run yet (before
"go", only the launcher and the compiler it started ever ran there), and
the host writes those bytes into a new file of its own folder. Boxes of
compiled languages mount that folder read-only at `CACHE_MOUNT`; the launcher copies
the program to where a fresh compile leaves it before it execs it.

The folder is root-owned and only traversable by the sandbox's group (no
listing), its files readable by that group only, and each file's name is an
HMAC of the key under a secret of this server process: a program cannot
find, let alone read, another run's program, and no one can plant a name.
It lives as long as the server: made empty at start, removed at shutdown.

Runs of the same files at once (a class told to run the teacher's program)
compile once: the first compiles, the others wait for it and take its program
(`one_compile`). The compiler's words (its warnings) are kept beside the
program, in memory, and a hit shows them again: a run that skips its compile
still sees what the compile said.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ce_ws.config import CompileCacheSettings
from ce_ws.sandbox.base import BoxProfile
from ce_ws.sandbox.spec import CACHE_MOUNT, SANDBOX_GID

log = logging.getLogger(__name__)

CACHE_PREFIX = "ce-cache-"
#: Traverse only for the sandbox's group: a name must be known to be opened.
FOLDER_MODE = 0o710
FILE_MODE = 0o440
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def cache_path(root: str, owner: str) -> Path:
    """`<root>/ce-cache-<owner>`: one folder per server id."""
    return Path(root) / f"{CACHE_PREFIX}{owner}"


#: A compile that said more than this (a flood of warnings) is not kept:
#: the next run compiles again and shows all of it.
MAX_COMPILER_OUTPUT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class CachedProgram:
    """A hit: the program's path inside a box, and what its compiler printed."""

    path: str
    compiler_output: bytes


@dataclass(frozen=True, slots=True)
class _Entry:
    size: int
    stored_at: float
    compiler_output: bytes


class CompileCache:
    """The cached programs of this server, indexed in memory, bounded by size and age."""

    def __init__(self, settings: CompileCacheSettings, *, folder: Path, recipe: str) -> None:
        """Make `folder` fresh and empty; `recipe` names the runtime image's build."""
        self._settings = settings
        self.folder = folder
        self._recipe = recipe.encode()
        self._secret = secrets.token_bytes(32)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        #: The compiles under way (a key, in boxes of one kind), set when each ends.
        self._compiling: dict[tuple[str, BoxProfile], asyncio.Event] = {}
        shutil.rmtree(folder, ignore_errors=True)  # a crashed server's: its secret is gone
        os.mkdir(folder, 0o700)
        os.chown(folder, -1, SANDBOX_GID)
        os.chmod(folder, FOLDER_MODE)

    def key(self, argv: Sequence[str], files: Sequence[tuple[str, bytes]]) -> str:
        """The cache name of a compile: an HMAC, so it is neither guessable nor forgeable.

        The compile command names the language's compiler and every flag.
        """
        digest = hmac.new(self._secret, digestmod=hashlib.sha256)
        for part in (self._recipe, *(arg.encode() for arg in argv)):
            digest.update(len(part).to_bytes(8, "big") + part)
        for name, data in files:
            for part in (name.encode(), data):
                digest.update(len(part).to_bytes(8, "big") + part)
        return digest.hexdigest()

    def lookup(self, key: str) -> CachedProgram | None:
        """The kept program, or None (absent or too old)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry.stored_at > self._settings.max_age_s:
            self._drop(key)
            return None
        self._entries.move_to_end(key)  # the least recently used goes first
        return CachedProgram(f"{CACHE_MOUNT}/{key}", entry.compiler_output)

    @contextlib.asynccontextmanager
    async def one_compile(self, key: str, box: BoxProfile) -> AsyncIterator[CachedProgram | None]:
        """The kept program, or None: then the caller compiles.

        While one box compiles a key, the runs of the same key in the same
        kind of `box` (its limits) wait for it, bounded by their own compile
        time (the caller's timeout), and take what it kept. A run in a box of
        other limits never waits: a compile starved of CPU on purpose cannot
        use up the time of everyone else's. A run that waited and still finds
        nothing (a compile error, a program too big to keep, a compile that
        was killed) compiles on its own, beside the other waiters: never one
        after another.
        """
        if (under_way := self._compiling.get((key, box))) is not None:
            await under_way.wait()
        if (cached := self.lookup(key)) is not None or under_way is not None:
            yield cached
            return
        done = self._compiling[key, box] = asyncio.Event()
        try:
            yield None
        finally:
            del self._compiling[key, box]
            done.set()

    @property
    def max_program_bytes(self) -> int:
        """The largest program that may be kept."""
        return min(self._settings.max_binary_bytes, self._settings.max_bytes)

    def store(self, key: str, program: bytes, compiler_output: bytes) -> bool:
        """Keep a program (called in a thread); the oldest go when over the size bound.

        False: too big to keep (the program, or the compiler's words).
        """
        if (
            len(program) > self.max_program_bytes
            or len(compiler_output) > MAX_COMPILER_OUTPUT_BYTES
        ):
            return False
        temporary = f".{key}.{secrets.token_hex(8)}"
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            fd = os.open(temporary, _NEW_FILE, 0o400, dir_fd=dir_fd)
            with os.fdopen(fd, "wb") as handle:
                os.fchown(fd, -1, SANDBOX_GID)
                os.fchmod(fd, FILE_MODE)
                handle.write(program)
            os.replace(temporary, key, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        self._entries.pop(key, None)
        self._entries[key] = _Entry(
            len(program) + len(compiler_output), time.monotonic(), compiler_output
        )
        self._evict()
        return True

    @property
    def size_bytes(self) -> int:
        return sum(entry.size for entry in self._entries.values())

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [
            k for k, e in self._entries.items() if now - e.stored_at > self._settings.max_age_s
        ]:
            self._drop(key)
        while self.size_bytes > self._settings.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        # A box copying it right now keeps its open file; later runs compile again.
        self._entries.pop(key, None)
        try:
            os.unlink(self.folder / key)
        except FileNotFoundError:
            log.warning("compile cache entry %s was already gone", key[:12])

    def remove(self) -> None:
        """Delete the folder; called at shutdown, after every box is gone."""
        self._entries.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
