"""The real server as a subprocess (`python -m ce_ws serve`), on loopback.

Each benchmark starts its own with raised capacity settings and its own
server id, so its containers (label `ce.owner=<id>`) and staging folders
(`/tmp/ce-<id>-*`) can be counted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.progress import say
from ce_ws.config import RunLimits

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
LOG_DIR = RESULTS_DIR / "logs"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 60.0
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def limits_env(group: str, limits: RunLimits) -> dict[str, str]:
    """`CE_<GROUP>__<FIELD>` for every field of `limits` (a partial group resets the rest)."""
    return {
        f"CE_{group}__{name.upper()}": str(value) for name, value in limits.model_dump().items()
    }


#: Settings raised so admission never gets in the way of a measurement.
RAISED = {
    "CE_CAPACITY__MAX_RUNS": "1024",
    "CE_CAPACITY__MAX_RUNS_PER_CLIENT": "1024",
    "CE_CAPACITY__MAX_QUEUE": "1024",
    "CE_CAPACITY__MAX_CONNECTIONS": "4096",
    # Every session of a benchmark comes from loopback: one client address.
    "CE_CAPACITY__MAX_CONNECTIONS_PER_CLIENT": "4096",
    "CE_CAPACITY__RUNS_PER_MINUTE": "100000",
    "CE_MAXIMA__OUTPUT_BYTES": str(256 * MIB),
    # The periodic reaper would tidy a leak away before it is counted.
    "CE_SANDBOX__REAP_INTERVAL_S": "3600",
}


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BenchServer:
    """A running server process and how to reach and observe it."""

    server_id: str
    port: int
    process: asyncio.subprocess.Process
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"

    def rss_bytes(self) -> int:
        """Resident memory of the server process now."""
        fields = Path(f"/proc/{self.process.pid}/statm").read_text().split()
        return int(fields[1]) * _PAGE_SIZE

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far."""
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def server_env(
    server_id: str, *, pool: bool, runtime: str = "runc", **extra: str
) -> dict[str, str]:
    """The `CE_*` variables of a benchmark server (raised limits, pool on or off)."""
    return {
        **RAISED,
        "CE_SERVER_ID": server_id,
        "CE_POOL__ENABLED": "true" if pool else "false",
        "CE_SANDBOX__RUNTIME": runtime,
        **extra,
    }


async def _wait_healthy(server: BenchServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(
                    f"server {server.server_id} exited with {server.process.returncode}; "
                    f"see {server.log_path}"
                )
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{server.url}/healthz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server {server.server_id} did not become healthy; see {server.log_path}")


@contextlib.asynccontextmanager
async def bench_server(
    env: Mapping[str, str], *, module: str = "ce_ws"
) -> AsyncIterator[BenchServer]:
    """Start `python -m <module> serve` with these `CE_*` settings; SIGTERM it and wait on exit.

    `module` is `ce_ws`, or a test's wrapper of it (tests.spec_recorder).
    """
    port = free_port()
    server_id = env["CE_SERVER_ID"]
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{server_id}.log"
    environment = {**os.environ, **env, "CE_HOST": "127.0.0.1", "CE_PORT": str(port)}
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, "serve",
            cwd=ROOT, env=environment, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    server = BenchServer(server_id, port, process, log_path)
    say(f"server {server_id} started on port {port} (pid {process.pid})")
    try:
        await _wait_healthy(server)
        yield server
    finally:
        await _stop(server)


async def _stop(server: BenchServer) -> None:
    process = server.process
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(_STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            say(f"server {server.server_id} ignored SIGTERM for {_STOP_TIMEOUT_S:.0f}s; killing it")
            process.kill()
            await process.wait()
    say(f"server {server.server_id} stopped (exit {process.returncode})")
