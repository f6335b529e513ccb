"""Preloaded Python behaves byte for byte like `python3 -u main.py`.

Every program of the corpus runs twice through the real WebSocket and
engine: on a server whose launcher runs Python in its own, already started
interpreter (`CE_SANDBOX__PRELOAD=true`), and on one whose launcher execs
`python3 -u` (`false`). Output bytes, status, exit code and signal must be
the same; a value that differs between any two processes (an address, the
hash seed, the container's host name) is never printed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID


@dataclass(frozen=True)
class Program:
    source: str
    args: list[str] = field(default_factory=list)
    stdin: str | None = None
    #: Type `stdin` once this output appears, not with the run: the terminal
    #: echoes typed keys at once, so a prompt and the echo of input sent before
    #: it would interleave by the interpreter's start-up time.
    stdin_after: bytes | None = None
    #: Wait for this output, then send SIGINT.
    interrupt_after: bytes | None = None
    #: More files, beside main.py: name → content.
    extra_files: dict[str, str] = field(default_factory=dict)
    #: main.py's bytes, base64 (for encodings other than UTF-8).
    raw_source: bytes | None = None


CORPUS: dict[str, Program] = {
    "hello": Program('print("hello, world")'),
    "argv": Program("import sys\nprint(sys.argv)", args=["one", "two words", "--flag"]),
    "orig_argv_and_executable": Program("import sys\nprint(sys.orig_argv, sys.executable)"),
    "main_globals_in_order": Program(
        "print([(k, type(v).__name__) for k, v in list(globals().items())])"
    ),
    "dunder_values": Program(
        "print(__name__, __file__, __doc__, __package__, __spec__, __cached__)\n"
        "print(type(__loader__).__name__, __loader__.name, __loader__.path)"
    ),
    "module_docstring": Program('"""The doc."""\nprint(repr(__doc__))'),
    "name_main_idiom": Program(
        'def main():\n    print("main ran")\nif __name__ == "__main__":\n    main()'
    ),
    "import_main_is_this_module": Program(
        "import __main__, sys\nX = 1\nprint(__main__.X, sys.modules['__main__'] is __main__)"
    ),
    "sys_path_and_cwd": Program("import os, sys\nprint(sys.path, os.getcwd())"),
    "nothing_preimported": Program("import sys\nprint(sorted(sys.modules))"),
    "flags": Program("import sys\nprint(sys.flags)"),
    # HOSTNAME is the container's id: only its shape is the same.
    "environment": Program(
        "import os\nhost = os.environ.pop('HOSTNAME')\n"
        "print(sorted(os.environ.items()), len(host), host.isalnum())"
    ),
    "terminal": Program(
        "import os, sys\n"
        "print([f.isatty() for f in (sys.stdin, sys.stdout, sys.stderr)], os.get_terminal_size())\n"
        "print(sys.stdin.encoding, sys.stdout.encoding, sys.stdout.line_buffering)"
    ),
    "stdout_is_unbuffered": Program(
        "import os, sys\nsys.stdout.write('no newline, no flush')\nos._exit(0)"
    ),
    "input_from_stdin": Program(
        "name = input('name? ')\nprint('hi', name)\nprint(input())", stdin="Ada\nsecond line\n",
        stdin_after=b"name? ",
    ),
    "read_all_stdin_lines": Program(
        "import sys\nfor n, line in enumerate(sys.stdin):\n    print(n, line.rstrip())\n"
        "    if n == 1: break",
        stdin="a\nb\n",
    ),
    "uncaught_exception": Program("def f():\n    raise ValueError('boom')\nf()"),
    "deep_traceback": Program(
        "def a(n):\n    if n == 0:\n        return 1 / 0\n    return a(n - 1)\na(5)"
    ),
    "chained_from": Program(
        "try:\n    {}['k']\nexcept KeyError as e:\n    raise RuntimeError('wrapped') from e"
    ),
    "chained_during_handling": Program(
        "try:\n    int('x')\nexcept ValueError:\n    undefined_name"
    ),
    "syntax_error": Program("print('before')\nx = (\n"),
    "indentation_error": Program("if True:\nprint('x')"),
    "sys_exit_code": Program("import sys\nprint('bye')\nsys.exit(3)"),
    "sys_exit_message": Program("import sys\nsys.exit('fatal: message')"),
    "sys_exit_none": Program("raise SystemExit"),
    "sys_exit_big": Program("import sys\nsys.exit(258)"),
    "os_exit": Program("import os\nprint('x', flush=True)\nos._exit(7)"),
    "raise_keyboard_interrupt": Program("print('start')\nraise KeyboardInterrupt"),
    "sigint_while_sleeping": Program(
        "import time\nprint('ready', flush=True)\ntime.sleep(30)", interrupt_after=b"ready"
    ),
    "sigint_caught": Program(
        "import time\ntry:\n    print('ready', flush=True)\n    time.sleep(30)\n"
        "except KeyboardInterrupt:\n    print('caught')\n    raise SystemExit(4)",
        interrupt_after=b"ready",
    ),
    "atexit_order": Program(
        "import atexit\natexit.register(print, 'second')\natexit.register(print, 'first')\n"
        "print('body')"
    ),
    "atexit_after_uncaught": Program(
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit sees', sys.last_type.__name__))\n"
        "raise LookupError('x')"
    ),
    "thread_outlives_main": Program(
        "import threading, time\n"
        "def late():\n    time.sleep(0.3)\n    print('thread done')\n"
        "threading.Thread(target=late).start()\nraise ValueError('main failed')"
    ),
    "custom_excepthook": Program(
        "import sys\nsys.excepthook = lambda t, v, tb: print('hook:', t.__name__, v, "
        "tb.tb_frame.f_code.co_filename, tb.tb_next)\nraise TypeError('custom')"
    ),
    "traceback_module": Program(
        "import traceback\ntry:\n    1 / 0\nexcept ZeroDivisionError:\n    traceback.print_exc()"
    ),
    "warnings_format": Program("import warnings\nwarnings.warn('careful')\nprint('after')"),
    "unicode_output": Program("print('héllo wörld ✓ 日本')"),
    "helper_module": Program(
        "import helper\nprint(helper.VALUE, helper.__name__, helper.__file__)",
        extra_files={"helper.py": "VALUE = 42\n"},
    ),
    "relative_open": Program(
        "print(open('data.txt').read().strip())", extra_files={"data.txt": "data!\n"}
    ),
    "latin1_coding_cookie": Program(
        "", raw_source="# -*- coding: latin-1 -*-\nprint('caf\xe9')\n".encode("latin-1")
    ),
    "del_builtins_name": Program("del print\n"),
    "recursion_limit_value": Program("import sys\nprint(sys.getrecursionlimit())"),
    "future_import_first": Program(
        "from __future__ import annotations\ndef f(x: Undefined) -> None: ...\n"
        "print(f.__annotations__)"
    ),
}


def _run_fields(program: Program) -> dict[str, Any]:
    if program.raw_source is not None:
        main = {
            "name": "main.py",
            "content": base64.b64encode(program.raw_source).decode(),
            "encoding": "base64",
        }
    else:
        main = {"name": "main.py", "content": program.source}
    extra = [{"name": name, "content": text} for name, text in program.extra_files.items()]
    fields: dict[str, Any] = {"files": [main, *extra], "args": program.args}
    if program.stdin is not None and program.stdin_after is None:
        fields["stdin"] = program.stdin
    return fields


async def run_once(client: Any, program: Program) -> tuple[bytes, tuple[Any, ...]]:
    """The program's output bytes and how it ended."""
    async with TermClient.connect(client) as term:
        started = await term.run("python", **_run_fields(program))
        assert started["type"] == "started", started
        if program.stdin_after is not None and program.stdin is not None:
            await term.expect(program.stdin_after)
            await term.keys(program.stdin)
        if program.interrupt_after is not None:
            await term.expect(program.interrupt_after)
            await term.send(type="signal", signal="SIGINT")
        ended = await term.wait_exit()
        return bytes(term.output), (ended["status"], ended["exit_code"], ended["signal"])


def test_the_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("name", sorted(CORPUS))
async def test_preloaded_python_runs_like_python3_u(make_client: MakeClient, name: str) -> None:
    program = CORPUS[name]
    preloaded = await make_client(pool={"enabled": False}, sandbox={"preload": True})
    plain = await make_client(
        server_id=f"{TEST_SERVER_ID}-plain", pool={"enabled": False}, sandbox={"preload": False}
    )
    plain_output, plain_end = await run_once(plain, program)
    here_output, here_end = await run_once(preloaded, program)
    assert (here_output, here_end) == (plain_output, plain_end)
    assert plain_end[0] in {"exited", "signaled", "killed"}, (plain_end, plain_output)


async def test_the_preloaded_server_really_runs_python_inside_the_launcher(
    make_client: MakeClient,
) -> None:
    """The kernel's view is the one difference: the process was started as the launcher."""
    probe = Program("print(open('/proc/self/cmdline', 'rb').read().split(b'\\0'))")
    preloaded = await make_client(pool={"enabled": False}, sandbox={"preload": True})
    plain = await make_client(
        server_id=f"{TEST_SERVER_ID}-plain", pool={"enabled": False}, sandbox={"preload": False}
    )
    here_output, _ = await run_once(preloaded, probe)
    plain_output, _ = await run_once(plain, probe)
    assert b"/opt/ce/launch" in here_output, here_output
    assert b"/work/main.py" in plain_output and b"/opt/ce/launch" not in plain_output
