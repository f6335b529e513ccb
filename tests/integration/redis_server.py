"""A real redis-server (Debian's) on a loopback port of its own, nothing kept on disk."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, wait_until
from tests.integration.server_process import ServerProcess, server_process
from tests.leftovers import TEST_SERVER_ID

REDIS_SERVER = Path("/usr/bin/redis-server")
_START_TIMEOUT_S = 10.0


@dataclass
class RedisServer:
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        assert wait_until(self._answers, timeout_s=_START_TIMEOUT_S), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def _answers(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.port), 1) as s,
        ):
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    assert REDIS_SERVER.exists(), f"{REDIS_SERVER} is missing: run `make deploy-checks`"
    server = RedisServer(free_port(), Path(tempfile.mkdtemp(prefix="redis-ce-test-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@contextlib.contextmanager
def redis_replica(
    redis: RedisServer, tmp_path: Path, name: str, **env: str
) -> Iterator[ServerProcess]:
    """A server replica sharing `redis`, id `<session id>-<name>`, warm pool off."""
    with server_process(
        server_id=f"{TEST_SERVER_ID}-{name}",
        CE_REDIS_URL=redis.url,
        **{
            "CE_POOL__ENABLED": "false",
            # Redis keeps the submissions: no replica may need its own file.
            "CE_JUDGE0__DATABASE": str(tmp_path / f"{name}-unused.sqlite3"),
            **env,
        },
    ) as server:
        yield server


@contextlib.contextmanager
def two_replicas(
    tmp_path: Path, **env: str
) -> Iterator[tuple[RedisServer, ServerProcess, ServerProcess]]:
    """A Redis and two replicas `a` and `b` sharing it, each with `env`."""
    with (
        redis_server() as redis,
        redis_replica(redis, tmp_path, "a", **env) as a,
        redis_replica(redis, tmp_path, "b", **env) as b,
    ):
        yield redis, a, b
