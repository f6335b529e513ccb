"""The harness of the hostile corpus: one attack through the real WebSocket.

`Corpus.attack` submits a program and, besides the outcome the test asserts,
checks what must hold after every case:

- the staging folder's content stays exactly what was submitted (checked
  every 50 ms while the run lives: names, types, owners, modes, bytes);
  owned by root and the sandbox's group, closed to everyone else;
- a concurrent canary (a small program with known output, on its own
  connection) finishes within its normal time while the attack runs;
- the run's container and staging folder are gone within seconds of `exit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from ce_ws.api.appkeys import SETTINGS
from ce_ws.languages import load_languages
from tests.helpers import eventually
from tests.integration.terminal import TermClient
from tests.leftovers import run_remains, staging_folder

LANGUAGES = load_languages()
CANARY = ("python", "print('canary', 6 * 7)")
CANARY_OUTPUT = b"canary 42"
#: "Within its normal time": this multiple of its idle time, plus a margin for
#: a busy 2-core machine shared with other test runs.
CANARY_SLOWDOWN = 4.0
CANARY_MARGIN_S = 3.0
GONE_WITHIN_S = 5.0
_WATCH_EVERY_S = 0.05
#: (uid, gid, mode) of a live run's staging folder and of its files: root
#: writes them, the sandbox's group (the container runs as 65534:65534) reads.
STAGING_FOLDER = (0, 65534, 0o550)
STAGING_FILE = (0, 65534, 0o440)
#: The canary's normal time per (runtime, warm pool or not): a server without a
#: pool starts every canary cold, so its budget is measured on the cold path.
_normal_canary_s: dict[tuple[str, bool], float] = {}

During = Callable[[TermClient], Awaitable[None]]
Connect = Callable[[], contextlib.AbstractAsyncContextManager[TermClient]]


@dataclass
class Outcome:
    """What an attack produced: its `exit`, its output, and the canary's time."""

    exit: dict[str, Any]
    output: bytes
    run_id: str
    canary_s: float | None
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.exit["status"])

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def lines(self) -> list[str]:
        return self.text().replace("\r\n", "\n").split("\n")

    def facts(self) -> dict[str, str]:
        """`key=value` lines the probe printed (the last value of each key wins)."""
        found = {}
        for line in self.lines():
            key, sep, value = line.strip().partition("=")
            if sep and key.isidentifier():
                found[key] = value
        return found


def staging_dir(run_id: str) -> Path:
    found = staging_folder(run_id)
    assert found is not None, f"no staging folder for run {run_id}"
    return found


def _read_regular(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def ownership(info: os.stat_result) -> tuple[int, int, int]:
    """(uid, gid, permission bits) of a file."""
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def _described(info: os.stat_result) -> str:
    uid, gid, mode = ownership(info)
    return f"owner {uid}:{gid} mode {mode:#o}"


def staging_deviation(path: Path, files: dict[str, bytes], *, removing: bool) -> str | None:
    """How the staging folder differs from what was submitted (None: it does not).

    Once the run has ended the folder is being removed, so entries may be
    missing (never added or altered).
    """
    try:
        info = path.lstat()
        if not stat.S_ISDIR(info.st_mode) or ownership(info) != STAGING_FOLDER:
            return f"folder {_described(info)}"
        names = set(os.listdir(path))
        if not names <= set(files) or (names != set(files) and not removing):
            return f"entries {sorted(names)}"
        for name in names:
            entry = (path / name).lstat()
            if not stat.S_ISREG(entry.st_mode) or ownership(entry) != STAGING_FILE:
                return f"{name}: {_described(entry)}"
            if _read_regular(path / name) != files[name]:
                return f"{name}: content changed"
    except FileNotFoundError:
        return None  # removed after the run: checked separately
    return None


class Corpus:
    """Attacks one server (on one runtime) and checks the invariants of each case."""

    def __init__(
        self,
        connect: Connect,
        runtime: str,
        *,
        warm: bool,
        client: TestClient[Any, Any] | None = None,
    ) -> None:
        self.connect = connect
        self.runtime = runtime
        #: Whether the server under attack has a warm pool.
        self.warm = warm
        #: The in-process server's test client, for raw WebSocket abuse.
        self.client = client

    @classmethod
    def of_client(cls, client: TestClient[Any, Any], runtime: str) -> Corpus:
        """Attack an in-process test server."""
        warm = client.app[SETTINGS].pool.enabled
        return cls(lambda: TermClient.connect(client), runtime, warm=warm, client=client)

    @classmethod
    def of_url(cls, ws_url: str, runtime: str, *, warm: bool) -> Corpus:
        """Attack a server running as a separate process."""
        return cls(lambda: TermClient.connect_url(ws_url), runtime, warm=warm)

    async def canary(self) -> float:
        """Run the canary on its own connection; its wall time in seconds."""
        began = time.monotonic()
        async with self.connect() as term:
            exit_message = await term.run_to_exit(*CANARY)
        elapsed = time.monotonic() - began
        assert exit_message["status"] == "exited" and exit_message["exit_code"] == 0, exit_message
        assert CANARY_OUTPUT in term.output, bytes(term.output)
        return elapsed

    async def canary_budget_s(self) -> float:
        """The canary's normal time on this runtime (measured once), with slack."""
        key = (self.runtime, self.warm)
        if key not in _normal_canary_s:
            _normal_canary_s[key] = min([await self.canary() for _ in range(2)])
        return _normal_canary_s[key] * CANARY_SLOWDOWN + CANARY_MARGIN_S

    async def attack(
        self,
        language: str,
        code: str,
        *,
        limits: dict[str, Any] | None = None,
        during: During | None = None,
        canary: bool = True,
        **fields: Any,
    ) -> Outcome:
        """Submit `code`, let it run to its end, and check every invariant."""
        budget = await self.canary_budget_s() if canary else 0.0
        wall_s = (limits or {}).get("wall_ms", 60_000) / 1000
        files = {LANGUAGES.resolve(language).entry_file: code.encode()}
        async with self.connect() as term:
            started = await term.run(language, code, limits=limits or {}, **fields)
            assert started["type"] == "started", started
            run_id = started["run_id"]
            deviations: list[str] = []
            ended = asyncio.Event()
            watcher = asyncio.create_task(self._watch(run_id, files, deviations, ended))
            # At once, beside the attack's start: an attack that is over in a
            # moment would otherwise be timed against an idle machine.
            canary_task = asyncio.create_task(self.canary()) if canary else None
            try:
                if during is not None:
                    await during(term)
                exit_message = await term.wait_exit(timeout=wall_s + 30)
                ended.set()
                canary_s = await canary_task if canary_task else None
            finally:
                watcher.cancel()
                if canary_task is not None:
                    canary_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        await self._assert_gone(run_id)
        assert not deviations, f"the staging folder changed: {deviations}"
        if canary_s is not None:
            assert canary_s < budget, f"canary took {canary_s:.2f} s (budget {budget:.2f} s)"
        return Outcome(exit_message, bytes(term.output), run_id, canary_s, term.messages)

    async def _watch(
        self, run_id: str, files: dict[str, bytes], deviations: list[str], ended: asyncio.Event
    ) -> None:
        path = staging_dir(run_id)
        while True:
            removing = ended.is_set()
            found = await asyncio.to_thread(staging_deviation, path, files, removing=removing)
            if (
                found is not None
                and not removing
                and await self._being_removed(run_id, path, files)
            ):
                # The server removes the folder once the container is gone, which
                # can be before this client has read the `exit` it sent first.
                found = None
            if found is not None and found not in deviations:
                deviations.append(found)
            await asyncio.sleep(_WATCH_EVERY_S)

    @staticmethod
    async def _being_removed(run_id: str, path: Path, files: dict[str, bytes]) -> bool:
        """Whether what was found is the folder's removal: entries only missing, container gone."""
        as_removal = await asyncio.to_thread(staging_deviation, path, files, removing=True)
        return as_removal is None and (await asyncio.to_thread(run_remains, run_id))[0] == []

    async def _assert_gone(self, run_id: str) -> None:
        async def gone() -> bool:
            return await asyncio.to_thread(run_remains, run_id) == ([], False)

        await eventually(gone, timeout_s=GONE_WITHIN_S, what=f"run {run_id} gone", every_s=0.1)
