"""Records every container a server creates, as the engine applied it.

The recorder is the sandbox's creation hook (`Engine(on_created=...)`): right
after the engine answers, and before the server gets the container back (so
nothing can have removed it yet), it inspects the container and keeps the
request body and the inspect result. In-process servers get the hook from
`tests/integration/conftest.py`; servers started as subprocesses run through
this module (`python -m tests.spec_recorder serve`) and append to the
JSON-lines file named by `RECORD_ENV`.
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

import aiohttp
from aiodocker.containers import DockerContainer

from ce_ws.config import SandboxSettings
from ce_ws.sandbox.engine import CreationHook

RECORD_ENV = "CODE_EXECUTOR_TEST_SPEC_RECORD"
MAIN_ENGINE = SandboxSettings().docker_url


@dataclass
class Record:
    container_id: str
    body: dict[str, Any]
    info: dict[str, Any] | None
    error: str | None = None
    #: The engine the server drove (the fault tests use a scratch engine of their own).
    engine: str = MAIN_ENGINE


Sink = Callable[[Record], None]


def hook(sink: Sink) -> CreationHook:
    """A creation hook that inspects each new container and hands the record to `sink`."""

    async def created(container: DockerContainer, config: dict[str, Any]) -> None:
        info, error = None, None
        try:
            info = await container.show()
        except Exception as exc:  # recorded, never raised into the server
            error = f"not inspectable right after creation: {exc!r}"
        sink(Record(container.id, config, info, error, _engine_of(container)))

    return created


def _engine_of(container: DockerContainer) -> str:
    """The socket of the engine that made the container (a server may drive several)."""
    connector = container.docker.connector
    if isinstance(connector, aiohttp.UnixConnector):
        return f"unix://{connector.path}"
    return str(container.docker.docker_host)  # an engine's TLS port


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

    sys.exit(main(sys.argv[1:], on_container_created=hook(file_sink(os.environ[RECORD_ENV]))))
