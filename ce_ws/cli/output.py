"""Where the program's output goes on our side.

On a terminal, every binary frame is terminal bytes for our stdout, as the
program's terminal drew them. Without one (`tty: false`), a frame's first
byte names its stream: stdout to our stdout, stderr and the compiler's
messages to our stderr, so `ce run x.py > out 2> err` keeps them apart.
"""

from __future__ import annotations

import contextlib
import os
import select

from ce_ws.protocol import OutputStream


def write_all(fd: int, data: bytes) -> None:
    """Write every byte (a pipe or terminal may take a write in parts).

    A descriptor another program left non-blocking is waited on, not failed.
    """
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


class OutputSink:
    """Writes output frames to our stdout and stderr; remembers where the cursor is."""

    def __init__(self, *, tty: bool, stdout_fd: int = 1, stderr_fd: int = 2) -> None:
        self._tty = tty
        self._stdout_fd = stdout_fd
        self._stderr_fd = stderr_fd
        self._last: dict[int, bytes] = {}

    def write(self, frame: bytes) -> None:
        """One binary frame from the server; raises BrokenPipeError when our reader left."""
        if self._tty:
            self._write(self._stdout_fd, frame)
        elif frame:
            # Anything but stdout (stderr, the compiler, a stream added later) is a diagnostic.
            fd = self._stdout_fd if frame[0] == OutputStream.STDOUT else self._stderr_fd
            self._write(fd, frame[1:])

    def notice(self, text: str, *, crlf: bool) -> None:
        """One line of `ce`'s own on stderr, on a line of its own.

        `crlf` on a terminal in raw mode (or a viewer's replay), which does
        not turn LF into CR LF.
        """
        newline = "\r\n" if crlf else "\n"
        prefix = newline if self.mid_line() else ""
        with contextlib.suppress(OSError):
            write_all(self._stderr_fd, f"{prefix}ce: {text}{newline}".encode())

    def mid_line(self) -> bool:
        """Whether a line `ce` prints now would start in the middle of the program's.

        On a terminal stdout and stderr share the screen, so it is stdout's last
        byte that counts; without one, stderr's.
        """
        fd = self._stdout_fd if self._tty else self._stderr_fd
        return self._last.get(fd, b"\n") not in (b"\n", b"\r")

    def _write(self, fd: int, data: bytes) -> None:
        if data:
            write_all(fd, data)
            self._last[fd] = data[-1:]
