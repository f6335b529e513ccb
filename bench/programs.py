"""The programs the benchmarks run, and how each is started without the server."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace

from ce_ws.languages import BINARY_PATH, WORK_DIR, load_languages

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


def _compiled_command(language: str, entry: str) -> tuple[str, ...]:
    """The server's compile command (languages.toml), then /tmp/main: the same work in one shell."""
    compile_argv = load_languages().by_name[language].compile_argv([entry])
    return ("sh", "-c", f"{shlex.join(compile_argv)} && exec {BINARY_PATH}")


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
    command=_compiled_command("c", "main.c"),
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


BASH_HELLO = Program(
    name="bash",
    language="bash",
    entry="main.sh",
    source='echo "hello, world"\n',
    command=("bash", f"{WORK_DIR}/main.sh"),
)
JAVASCRIPT_HELLO = Program(
    name="javascript",
    language="javascript",
    entry="main.js",
    source='console.log("hello, world");\n',
    command=("node", f"{WORK_DIR}/main.js"),
)
RUBY_HELLO = Program(
    name="ruby",
    language="ruby",
    entry="main.rb",
    source='puts "hello, world"\n',
    command=("ruby", f"{WORK_DIR}/main.rb"),
)
CPP_IOSTREAM_HELLO = Program(
    name="c++ iostream",
    language="cpp",
    entry="main.cpp",
    source='#include <iostream>\nint main() { std::cout << "hello, world" << std::endl; }\n',
    command=_compiled_command("cpp", "main.cpp"),
    compiled=True,
)
CPP_BITS_HELLO = Program(
    name="c++ bits/stdc++.h",
    language="cpp",
    entry="main.cpp",
    source=(
        "#include <bits/stdc++.h>\nusing namespace std;\n"
        'int main() { cout << "hello, world" << endl; }\n'
    ),
    command=_compiled_command("cpp", "main.cpp"),
    compiled=True,
)


def fresh(program: Program, sample: int) -> Program:
    """The program made new for this sample (a trailing comment): no cache can know it."""
    marker = "#" if program.language in {"python", "bash", "ruby"} else "//"
    return replace(program, source=f"{program.source}{marker} sample {sample}\n")
