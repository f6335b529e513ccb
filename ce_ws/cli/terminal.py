"""Our side's terminal: raw mode while a program has it, restored on every way out.

`raw_terminal` is a context manager: whatever ends the run (the program's
end, the server gone, Ctrl-\\, a signal to `ce`, an exception), leaving the
`with` puts back the settings it found, exactly.
"""

from __future__ import annotations

import contextlib
import os
import termios
import tty
from collections.abc import Iterator

#: The size the wire protocol accepts (`resize`: cols 1..500, rows 1..200).
MAX_COLS = 500
MAX_ROWS = 200


def is_terminal(fd: int) -> bool:
    """Whether `fd` is a terminal (a TTY run needs both stdin and stdout to be)."""
    return os.isatty(fd)


def window_size(fd: int) -> tuple[int, int]:
    """(cols, rows) of the terminal on `fd`, within the protocol's bounds."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return 80, 24
    # A terminal that reports 0 (a fresh pseudo-terminal) gets the usual size.
    cols = size.columns or 80
    rows = size.lines or 24
    return min(cols, MAX_COLS), min(rows, MAX_ROWS)


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode on `fd` for the `with` body: every key, Ctrl-C included, is a byte for the program.

    The program's own terminal (in its container) echoes and turns
    newlines into CR LF, so ours must do neither.
    """
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        # TCSADRAIN: what the program printed last is written before the
        # settings change back, so it is not mangled.
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def keys_unechoed(fd: int) -> Iterator[None]:
    """Keys typed on `fd` are neither shown nor kept, Ctrl-C still works (a viewer's terminal).

    Without a terminal on `fd` this does nothing.
    """
    if not is_terminal(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    quiet = termios.tcgetattr(fd)
    quiet[3] &= ~(termios.ECHO | termios.ICANON)  # lflags; ISIG stays on
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
