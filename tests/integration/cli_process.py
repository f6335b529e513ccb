"""The `ce` command as a user runs it: on a real pseudo-terminal, or with pipes.

`PtyCe` starts `python -m ce_ws.cli` as the session leader of a fresh
pseudo-terminal (its controlling terminal, so the kernel sends it SIGWINCH
on a resize, as a terminal emulator would) and reads the screen side.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIMEOUT_S = 30.0
# Make the pseudo-terminal the child's controlling terminal, then become `ce`.
_TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'ce_ws.cli', *sys.argv[1:]])"
)


def ce_command(*args: str) -> list[str]:
    """argv of `ce ARGS` from this worktree."""
    return [sys.executable, "-m", "ce_ws.cli", *args]


def ce_pipes(
    *args: str, server: str, stdin: bytes = b"", timeout_s: float = DEFAULT_TIMEOUT_S
) -> subprocess.CompletedProcess[bytes]:
    """Run `ce` without a terminal: stdin, stdout and stderr are pipes."""
    return subprocess.run(
        ce_command(*args),
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "CE_SERVER": server},
        timeout=timeout_s,
        check=False,
    )


def set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class PtyCe:
    """One `ce` on its own pseudo-terminal; `screen` is everything it drew."""

    def __init__(self, *args: str, server: str, cols: int = 80, rows: int = 24) -> None:
        self.master, self.slave = pty.openpty()
        set_size(self.slave, cols, rows)
        self.settings_before = self.stty()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _TAKE_TERMINAL, *args],
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            cwd=ROOT,
            env={**os.environ, "CE_SERVER": server, "TERM": "xterm-256color"},
            start_new_session=True,
        )
        self.screen = bytearray()

    def stty(self) -> str:
        """The terminal's settings, as `stty -g` prints them."""
        return subprocess.run(
            ["stty", "-g"], stdin=self.slave, capture_output=True, check=True, text=True
        ).stdout.strip()

    def _read(self, timeout_s: float) -> bool:
        """Read what is there within `timeout_s`; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], max(timeout_s, 0))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: no process has the terminal open any more
            return False
        self.screen.extend(data)
        return bool(data)

    def expect(self, text: bytes, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Wait until `text` is on the screen (after what was expected before)."""
        deadline = time.monotonic() + timeout_s
        while text not in self.screen:
            remaining = deadline - time.monotonic()
            closed = not self._read(min(remaining, 0.2))
            if remaining <= 0 or (closed and self.process.poll() is not None):
                raise AssertionError(f"{text!r} never appeared; screen: {bytes(self.screen)!r}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def resize(self, cols: int, rows: int) -> None:
        """As a terminal emulator does: set the size, the kernel sends SIGWINCH."""
        set_size(self.master, cols, rows)

    def wait(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
        """`ce`'s exit status, reading the screen meanwhile (so `ce` never blocks on it)."""
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"ce did not end; screen: {bytes(self.screen)!r}")
            self._read(0.1)
        while self._read(0.05) and select.select([self.master], [], [], 0)[0]:
            pass
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        os.close(self.master)
        os.close(self.slave)


class CuttableProxy:
    """A TCP relay to the server whose connections can be cut at once.

    `cut` is the server gone, as `ce` sees it; the server sees its client
    leave, and ends the run as it always does.
    """

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        with self._listener:
            while True:
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", self._target))
                self._sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_relay, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        """Drop every relayed connection abruptly and stop accepting new ones."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        for sock in self._sockets:
            # As when the server's process dies: the kernel ends its
            # connections, no WebSocket close frame is ever sent.
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _relay(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
