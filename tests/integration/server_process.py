"""The real server as a separate process, for crash, shutdown and memory tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ce_ws.sandbox.docker import SHUTDOWN_SWEEP
from tests.helpers import free_port, wait_healthy
from tests.leftovers import TEST_SERVER_ID, cache_folder

ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT_S = 20.0


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    server_id: str
    log_path: Path
    #: SIGTERM was sent: the server is stopping (a second one would kill it mid-shutdown).
    stopping: bool = False

    #: SIGKILLed by the test: it could not exit cleanly, and is not asked to.
    crashed: bool = False

    def terminate(self) -> None:
        """Ask the server to shut down (SIGTERM), as a service manager would."""
        self.process.send_signal(signal.SIGTERM)
        self.stopping = True

    def crash(self) -> None:
        """Kill the server outright (SIGKILL) and wait until it is gone."""
        self.process.kill()
        self.process.wait()
        self.crashed = True

    def log(self) -> str:
        """Everything the server wrote to stderr so far (its log)."""
        return self.log_path.read_text(errors="replace")

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
    clean_exit: bool = True,
    **env: str,
) -> Iterator[ServerProcess]:
    """Start `python -m ce_ws serve`; SIGTERM it (unless `terminate` did) on exit.

    With `clean_exit`, a server that stopped on SIGTERM must have logged no
    traceback and no shutdown sweep (every run removed what it made itself).
    """
    port = port or free_port()
    server_id = server_id or f"{TEST_SERVER_ID}-p{port}"
    environment = {
        **os.environ,
        "CE_HOST": "127.0.0.1",
        "CE_PORT": str(port),
        # Its own owner id: a server reaps every container of its id it does not run.
        "CE_SERVER_ID": server_id,
        **env,
    }
    log_path = Path(tempfile.mkstemp(prefix=f"{server_id}-", suffix=".log")[1])
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.spec_recorder", "serve"],
            cwd=ROOT,
            env=environment,
            stderr=log_file,
        )
    server = ServerProcess(process, port, server_id, log_path)
    try:
        try:
            wait_healthy(server.url, exit_code=process.poll, timeout_s=_START_TIMEOUT_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log:\n{server.log()[-4000:]}") from None
        yield server
        if clean_exit and not server.crashed:
            _stop(server)
            _assert_clean_exit(server)
    finally:
        if process.poll() is None:
            _stop(server)
        log_path.unlink(missing_ok=True)


def _stop(server: ServerProcess) -> None:
    """SIGTERM (unless a test sent it already), then wait for the exit; kill after 30 s."""
    if server.process.poll() is None and not server.stopping:
        server.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _assert_clean_exit(server: ServerProcess) -> None:
    assert not cache_folder(server.server_id).exists(), "its compile cache outlived it"
    log = server.log()
    assert server.process.returncode == 0, f"exit {server.process.returncode}:\n{log[-4000:]}"
    for sign in (SHUTDOWN_SWEEP, "Traceback (most recent call last)"):
        assert sign not in log, f"the server logged {sign!r}:\n{log[-4000:]}"
