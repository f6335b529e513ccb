"""The programs the benchmarks run, and how each is started without the server."""

from __future__ import annotations

from dataclasses import dataclass

from ce_ws.languages import BINARY_PATH, WORK_DIR

HELLO_PYTHON = 'print("hello, world")\n'
HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello, world"); return 0; }\n'

#: Reads its terminal in raw mode and writes back what it read: a REPL's loop.
ECHO_PYTHON = """\
import os, tty
tty.setraw(0)
os.write(1, b"ready>")
while True:
    data = os.read(0, 1024)
    if not data or b"\\x04" in data:
        break
    os.write(1, data)
"""


def flood_python(total_bytes: int) -> str:
    """A program writing `total_bytes` of output as fast as it can (no newlines)."""
    return f"""\
import os
block = memoryview(b"x" * 65536)
left = {total_bytes}
while left:
    left -= os.write(1, block[: min(left, 65536)])
"""


@dataclass(frozen=True, slots=True)
class Program:
    """One benchmark program: wire language, source, and the plain command line."""

    name: str
    language: str
    entry: str
    source: str
    #: What a one-shot `docker run` (no launcher, no exec) runs in the container.
    command: tuple[str, ...]
    compiled: bool = False


PYTHON_HELLO = Program(
    name="python",
    language="python",
    entry="main.py",
    source=HELLO_PYTHON,
    command=("python3", "-u", f"{WORK_DIR}/main.py"),
)
C_HELLO = Program(
    name="c",
    language="c",
    entry="main.c",
    source=HELLO_C,
    # The server compiles with `gcc -O2 -Wall -o /tmp/main main.c -lm` in an
    # exec beside the launcher, then runs /tmp/main: the same work in one shell.
    command=(
        "sh",
        "-c",
        f"gcc -O2 -Wall -o {BINARY_PATH} {WORK_DIR}/main.c -lm && exec {BINARY_PATH}",
    ),
    compiled=True,
)


def python_program(name: str, source: str) -> Program:
    """A Python program run as `python3 -u /work/main.py`, like the server does."""
    return Program(
        name=name,
        language="python",
        entry="main.py",
        source=source,
        command=PYTHON_HELLO.command,
    )
