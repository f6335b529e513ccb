"""Records every container the server creates, as the engine applied it.

The hook wraps aiodocker's `DockerContainers.create`: right after the engine
answers, and before the server gets the container back (so nothing can have
removed it yet), it inspects the container and keeps the request body and the
inspect result. Servers started in-process are hooked by the session fixture
in tests/conftest.py; servers started as subprocesses run through this module
(`python -m tests.spec_recorder serve ...`) and append to a JSON-lines file
named by `RECORD_ENV`. Every container is judged against the spec except the
few a test creates itself (its own code awaits `create`), which are recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiodocker.containers import DockerContainer, DockerContainers

RECORD_ENV = "CODE_EXECUTOR_TEST_SPEC_RECORD"


@dataclass
class Record:
    container_id: str
    by_server: bool
    body: dict[str, Any]
    info: dict[str, Any] | None
    error: str | None = None


Sink = Callable[[Record], None]
_original_create = DockerContainers.create


def install(sink: Sink) -> None:
    """Wrap container creation so every created container reaches `sink`."""

    async def create(
        self: DockerContainers, config: dict[str, Any], *, name: str | None = None
    ) -> DockerContainer:
        # Tests await `create` themselves; the server creates inside a task of
        # its own (a shielded future), whose caller is asyncio, never `ce_ws`.
        caller = sys._getframe(1).f_globals.get("__name__", "")
        container = await _original_create(self, config, name=name)
        info, error = None, None
        try:
            info = await container.show()
        except Exception as exc:  # recorded, never raised into the server
            error = f"not inspectable right after creation: {exc!r}"
        made_by_a_test = caller.startswith("tests.")
        sink(Record(container.id, not made_by_a_test, config, info, error))
        return container

    DockerContainers.create = create  # type: ignore[method-assign]


def uninstall() -> None:
    DockerContainers.create = _original_create  # type: ignore[method-assign]


def file_sink(path: str) -> Sink:
    """A sink appending JSON lines (for a server running as a subprocess)."""
    lock = threading.Lock()

    def sink(record: Record) -> None:
        line = json.dumps(asdict(record)) + "\n"
        with lock, open(path, "a", encoding="utf-8") as handle:
            handle.write(line)

    return sink


def read_file(path: Path) -> list[Record]:
    if not path.exists():
        return []
    return [Record(**json.loads(line)) for line in path.read_text().splitlines() if line]


class CreationWatcher:
    """Every container created with this owner label, from the engine's events."""

    def __init__(self, is_ours: Callable[[str], bool]) -> None:
        self._is_ours = is_ours
        self._process = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container",
             "--filter", "event=create", "--filter", "label=ce.owner"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.created: dict[str, dict[str, str]] = {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            event = json.loads(line)
            actor = event.get("Actor", {})
            attributes = actor.get("Attributes", {})
            if self._is_ours(attributes.get("ce.owner", "")):
                self.created[actor.get("ID") or event["id"]] = attributes

    def stop(self) -> dict[str, dict[str, str]]:
        """What was created; fails if the watcher itself died (it would have seen nothing)."""
        alive = self._process.poll() is None and self._thread.is_alive()
        self._process.terminate()
        self._process.wait(timeout=10)
        self._thread.join(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()
        assert alive, "`docker events` stopped early: no container creation was watched"
        return self.created


if __name__ == "__main__":
    from ce_ws.__main__ import main

    if RECORD_ENV in os.environ:
        install(file_sink(os.environ[RECORD_ENV]))
    sys.exit(main(sys.argv[1:]))
