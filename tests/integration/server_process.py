"""The real server as a separate process, for crash, shutdown and memory tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, wait_healthy
from tests.leftovers import TEST_SERVER_ID

ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_S = 20.0


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextlib.contextmanager
def server_process(
    port: int | None = None,
    *,
    server_id: str | None = None,
    log_path: Path | None = None,
    **env: str,
) -> Iterator[ServerProcess]:
    """Start `python -m ce_ws serve`; SIGTERM it (if still alive) on exit.

    Its log (stderr) goes to `log_path` when given, for a test to read.
    """
    port = port or free_port()
    environment = {
        **os.environ,
        "CE_HOST": "127.0.0.1",
        "CE_PORT": str(port),
        # Its own owner id: a server reaps every container of its id it does not run.
        "CE_SERVER_ID": server_id or f"{TEST_SERVER_ID}-p{port}",
        **env,
    }
    with contextlib.ExitStack() as files:
        log = files.enter_context(log_path.open("wb")) if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.spec_recorder", "serve"],
            cwd=ROOT,
            env=environment,
            stderr=log,
        )
    server = ServerProcess(process, port)
    try:
        wait_healthy(server.url, exit_code=process.poll, timeout_s=_START_TIMEOUT_S)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
