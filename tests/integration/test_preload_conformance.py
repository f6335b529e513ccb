"""Preloaded Python, Node and Ruby behave byte for byte like `python3 -u
main.py`, `node main.js` and `ruby main.rb`.

Every program of a language's corpus runs twice through the real WebSocket
and engine: on a server whose boxes wait in the already started interpreter
(`CE_SANDBOX__PRELOAD=true`), and on one whose launcher execs the run
command (`false`). Output bytes, status, exit code and signal must be the
same; a value that differs between any two processes (an address, the hash
seed, the container's host name, a time) is never printed.
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
    #: More files, beside the entry file: name → content.
    extra_files: dict[str, str] = field(default_factory=dict)
    #: The entry file's bytes (for encodings other than UTF-8).
    raw_source: bytes | None = None
    #: The entry file's name, when not the language's usual one.
    entry: str | None = None


PYTHON: dict[str, Program] = {
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
        "name = input('name? ')\nprint('hi', name)\nprint(input())",
        stdin="Ada\nsecond line\n",
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
    # Short sleeps: a signal that lands between the print and the sleep's system
    # call waits for the sleep to end (CPython checks its handlers only between them).
    "sigint_while_sleeping": Program(
        "import time\nprint('ready', flush=True)\nfor _ in range(600):\n    time.sleep(0.05)",
        interrupt_after=b"ready",
    ),
    "sigint_caught": Program(
        "import time\ntry:\n    print('ready', flush=True)\n    for _ in range(600):\n"
        "        time.sleep(0.05)\nexcept KeyboardInterrupt:\n    print('caught')\n"
        "    raise SystemExit(4)",
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


NODE: dict[str, Program] = {
    "hello": Program('console.log("hello, world")'),
    "argv": Program("console.log(process.argv)", args=["one", "two words", "--flag"]),
    "argv0_exec_path_exec_argv_title": Program(
        "console.log(process.argv0, process.execPath, process.execArgv, process.title)"
    ),
    "require_main_is_this_module": Program(
        "console.log(require.main === module, process.mainModule === module, module.id,\n"
        "  module.filename, module.loaded, module.parent, module.paths, module.children)"
    ),
    "filename_dirname_cwd": Program("console.log(__filename, __dirname, process.cwd())"),
    "top_level_this_is_exports": Program("console.log(this === module.exports, exports)"),
    "require_cache_holds_only_main": Program("console.log(Object.keys(require.cache))"),
    "module_run_main_is_nodes_own": Program(
        "const Module = require('module')\n"
        "console.log(Module.runMain.name, Object.getOwnPropertyDescriptor(Module, 'runMain'))\n"
        "console.log(Object.keys(Module), Object.keys(Module._pathCache))"
    ),
    "globals": Program("console.log(Object.getOwnPropertyNames(globalThis).sort().join(' '))"),
    "process_keys": Program("console.log(Object.keys(process).sort().join(' '))"),
    "stack_settings": Program("console.log(Error.stackTraceLimit, Error.prepareStackTrace)"),
    # HOSTNAME is the container's id: only its shape is the same.
    "environment": Program(
        "const env = { ...process.env }\nconst host = env.HOSTNAME\ndelete env.HOSTNAME\n"
        "console.log(env, host.length, /^[0-9a-f]+$/.test(host))"
    ),
    "terminal": Program(
        "console.log(process.stdout.isTTY, process.stderr.isTTY, process.stdin.isTTY,\n"
        "  process.stdout.columns, process.stdout.rows, process.stdin.isRaw)"
    ),
    "parent_is_the_init": Program("console.log(process.ppid)"),
    "write_without_newline_then_exit": Program(
        "process.stdout.write('no newline, no flush')\nprocess.exit(0)"
    ),
    "readline_prompt": Program(
        "const rl = require('readline').createInterface({ input: process.stdin,"
        " output: process.stdout })\n"
        "rl.question('name? ', (name) => { console.log('hi', name); rl.close() })",
        stdin="Ada\n",
        stdin_after=b"name? ",
    ),
    "stdin_lines": Program(
        "const rl = require('readline').createInterface({ input: process.stdin })\n"
        "let n = 0\nrl.on('line', (line) => { console.log(n, line); if (++n === 2) rl.close() })",
        stdin="a\nb\n",
    ),
    "uncaught_error": Program("function f() {\n  throw new Error('boom')\n}\nf()"),
    "deep_stack": Program("function a(n) {\n  if (n === 0) null.x\n  return a(n - 1)\n}\na(3)"),
    "throw_a_string": Program("throw 'not an error'"),
    "syntax_error": Program("console.log('before')\nconst x = (\n"),
    "reference_error": Program("console.log(undefinedName)"),
    "error_with_cause": Program(
        "try { JSON.parse('{') } catch (e) { throw new Error('wrapped', { cause: e }) }"
    ),
    "exit_code": Program("console.log('bye')\nprocess.exit(3)"),
    "exit_code_property": Program("process.exitCode = 4\nconsole.log('set')"),
    "exit_big": Program("process.exit(258)"),
    "exit_event": Program(
        "process.on('exit', (code) => console.log('exit event', code))\nprocess.exitCode = 5"
    ),
    "unhandled_rejection": Program("Promise.reject(new RangeError('nope'))"),
    "error_in_a_timer": Program(
        "setTimeout(() => { throw new TypeError('later') }, 10)\nconsole.log('scheduled')"
    ),
    "uncaught_exception_handler": Program(
        "process.on('uncaughtException', (e, origin) => console.log('caught', e.message, origin))\n"
        "throw new Error('top')"
    ),
    "sigint_default": Program(
        "console.log('ready')\nsetInterval(() => {}, 1000)", interrupt_after=b"ready"
    ),
    "sigint_handler": Program(
        "process.on('SIGINT', () => { console.log('caught'); process.exit(4) })\n"
        "console.log('ready')\nsetInterval(() => {}, 1000)",
        interrupt_after=b"ready",
    ),
    "helper_module": Program(
        "const h = require('./helper')\n"
        "console.log(h.value, h.parentIsMain, Object.keys(require.cache))",
        extra_files={
            "helper.js": "exports.value = 42\nexports.parentIsMain = module.parent === require.main\n"
        },
    ),
    "relative_read": Program(
        "console.log(require('fs').readFileSync('data.txt', 'utf8').trim())",
        extra_files={"data.txt": "data!\n"},
    ),
    "es_module_entry": Program(
        "import { basename } from 'path'\n"
        "console.log(import.meta.url, basename(process.argv[1]), typeof require)\n"
        "throw new TypeError('from a module')",
        entry="main.mjs",
    ),
    "other_entry_name": Program(
        "console.log(__filename, require.main === module)", entry="solution.js"
    ),
    "worker_thread": Program(
        "const { Worker } = require('worker_threads')\n"
        "const w = new Worker('console.log(\"in worker\", process.execArgv, process.argv.length)',"
        " { eval: true })\n"
        "w.on('exit', (code) => console.log('worker exit', code))"
    ),
    "forked_child": Program(
        "if (process.argv[2] === 'child') {\n"
        "  console.log('child', process.execArgv, process.argv.slice(2))\n"
        "} else {\n"
        "  require('child_process').fork(__filename, ['child'])"
        ".on('exit', (code) => console.log('child exit', code))\n"
        "}"
    ),
    "unicode_output": Program("console.log('héllo wörld ✓ 日本')"),
    "open_descriptors": Program(
        "console.log(require('fs').readdirSync('/proc/self/fd').map(Number).sort((a, b) => a - b))"
    ),
    "byte_order_mark_and_shebang": Program(
        "", raw_source="\ufeff#!/usr/bin/env node\nconsole.log('shebang skipped')\n".encode()
    ),
}

RUBY: dict[str, Program] = {
    "hello": Program('puts "hello, world"'),
    "argv": Program("p ARGV, $*", args=["one", "two words", "--flag", "é 😀"]),
    "program_names": Program(
        "p $0, __FILE__, $PROGRAM_NAME, Process.argv0, __dir__, __method__, self, self.class"
    ),
    "main_idiom": Program('def main = puts("main ran")\nmain if __FILE__ == $0'),
    "loaded_features": Program("puts $LOADED_FEATURES"),
    "load_path": Program("puts $LOAD_PATH"),
    "constants": Program("p Object.constants.sort"),
    "globals": Program("p global_variables.sort"),
    "methods_on_main": Program(
        "p Object.private_instance_methods(false).sort, singleton_methods, local_variables"
    ),
    "trace_points": Program("p TracePoint.stat.values"),
    # HOSTNAME is the container's id: only its shape is the same.
    "environment": Program(
        "env = ENV.to_h\nhost = env.delete('HOSTNAME')\np env.sort, host.size, host.match?(/\\A\\h+\\z/)"
    ),
    "terminal": Program(
        "require 'io/console'\n"
        "p [STDIN, STDOUT, STDERR].map(&:tty?), STDOUT.sync, STDIN.external_encoding, "
        "IO.console.winsize, STDIN.fileno"
    ),
    "unflushed_output_and_exit_bang": Program("$stdout.write('no newline')\nexit!(0)"),
    "gets_prompt": Program(
        'print "name? "\nname = gets.chomp\nputs "hi #{name}"',
        stdin="Ada\n",
        stdin_after=b"name? ",
    ),
    "stdin_lines": Program(
        'STDIN.each_line.with_index do |line, n|\n  puts "#{n} #{line.chomp}"\n  break if n == 1\nend',
        stdin="a\nb\n",
    ),
    "uncaught_exception": Program('def f\n  raise ArgumentError, "boom"\nend\nf'),
    "deep_backtrace": Program("def a(n)\n  return 1 / 0 if n.zero?\n  a(n - 1)\nend\na(5)"),
    "name_error_hints": Program("value = 1\nputs valeu"),
    "no_method_error_highlight": Program("text = nil\nputs text.upcase"),
    "syntax_error": Program("puts 'before'\ndef broken(\n"),
    "exit_code": Program("puts 'bye'\nexit 3"),
    "abort_message": Program("abort 'fatal: message'"),
    "exit_bang": Program("puts 'x'\n$stdout.flush\nexit!(7)"),
    "raise_interrupt": Program("puts 'start'\nraise Interrupt"),
    "sigint_while_sleeping": Program(
        "$stdout.sync = true\nputs 'ready'\n600.times { sleep 0.05 }", interrupt_after=b"ready"
    ),
    "sigint_rescued": Program(
        "$stdout.sync = true\nbegin\n  puts 'ready'\n  600.times { sleep 0.05 }\n"
        "rescue Interrupt\n  puts 'caught'\n  exit 4\nend",
        interrupt_after=b"ready",
    ),
    "sigint_trap": Program(
        "$stdout.sync = true\ntrap('INT') { puts 'trapped'; exit 5 }\nputs 'ready'\nsleep 30",
        interrupt_after=b"ready",
    ),
    "at_exit_order": Program("at_exit { puts 'second' }\nat_exit { puts 'first' }\nputs 'body'"),
    "at_exit_sees_the_error": Program(
        "at_exit { puts \"at_exit sees #{$!.class}: #{$!.backtrace.inspect}\" }\nraise IndexError, 'x'"
    ),
    "begin_and_end_blocks": Program("END { puts 'END' }\nputs 'body'\nBEGIN { puts 'BEGIN' }"),
    "thread_error_report": Program(
        "Thread.report_on_exception = false\nt = Thread.new { raise 'in thread' }\nbegin\n  t.join\nrescue => e\n  puts \"joined: #{e.message}\"\nend"
    ),
    "data_after_end": Program("puts DATA.read\np DATA.path, DATA.lineno\n__END__\ndata line\n"),
    "caller_at_top_level": Program("p caller, caller_locations(0).map(&:to_s)"),
    "rescued_backtrace": Program(
        "def f = raise('x')\nbegin\n  f\nrescue => e\n  p e.backtrace, e.backtrace_locations.map(&:label)\nend"
    ),
    "require_relative_helper": Program(
        "require_relative 'helper'\np HELPER, $LOADED_FEATURES.last",
        extra_files={"helper.rb": "HELPER = 42\n"},
    ),
    "relative_read": Program("puts File.read('data.txt')", extra_files={"data.txt": "data!\n"}),
    "latin1_magic_comment": Program(
        "",
        raw_source="# encoding: iso-8859-1\ns = 'caf\xe9'\np s.encoding, s.bytes\n".encode(
            "latin-1"
        ),
    ),
    "frozen_string_literal": Program(
        "# frozen_string_literal: true\ns = 'x'\np s.frozen?\ns << 'y'"
    ),
    "shebang_with_options": Program("#!/usr/bin/env ruby -w\nx = 1\np $VERBOSE"),
    "other_entry_name": Program("p __FILE__, $0", entry="solution.rb"),
    "unicode_output": Program("puts 'héllo wörld ✓ 日本'"),
    "warn_to_stderr": Program("warn 'careful'\n$stderr.puts 'err'\nputs 'out'"),
    "empty_program": Program(""),
    "open_descriptors": Program("p Dir.children('/proc/self/fd').map(&:to_i).sort"),
    "open_descriptors_other_entry": Program(
        "p Dir.children('/proc/self/fd').map(&:to_i).sort", entry="solution.rb"
    ),
}

CORPORA: dict[str, dict[str, Program]] = {"python": PYTHON, "javascript": NODE, "ruby": RUBY}
ENTRY = {"python": "main.py", "javascript": "main.js", "ruby": "main.rb"}
#: What the kernel says the preloaded process was started as, and the probe.
STARTED_AS = {"python": b"'/opt/ce/launch'", "javascript": b"'/opt/ce/launch.js'"}
CMDLINE_PROBE = {
    "python": "print(open('/proc/self/cmdline', 'rb').read().split(b'\\0'))",
    "javascript": "console.log(require('fs').readFileSync('/proc/self/cmdline', 'latin1').split('\\0'))",
}
#: Milliseconds from the program file's writing to its first line.
RUBY_FILE_AGE_PROBE = "puts ((Time.now - File.mtime(__FILE__)) * 1000).round"


def _run_fields(language: str, program: Program) -> dict[str, Any]:
    name = program.entry or ENTRY[language]
    if program.raw_source is not None:
        main = {
            "name": name,
            "content": base64.b64encode(program.raw_source).decode(),
            "encoding": "base64",
        }
    else:
        main = {"name": name, "content": program.source}
    extra = [{"name": name, "content": text} for name, text in program.extra_files.items()]
    fields: dict[str, Any] = {"files": [main, *extra], "args": program.args}
    if program.stdin is not None and program.stdin_after is None:
        fields["stdin"] = program.stdin
    return fields


async def run_once(client: Any, language: str, program: Program) -> tuple[bytes, tuple[Any, ...]]:
    """The program's output bytes and how it ended."""
    async with TermClient.connect(client) as term:
        started = await term.run(language, **_run_fields(language, program))
        assert started["type"] == "started", started
        if program.stdin_after is not None and program.stdin is not None:
            await term.expect(program.stdin_after)
            await term.keys(program.stdin)
        if program.interrupt_after is not None:
            await term.expect(program.interrupt_after)
            await term.send(type="signal", signal="SIGINT")
        ended = await term.wait_exit()
        return bytes(term.output), (ended["status"], ended["exit_code"], ended["signal"])


async def _both_ways(make_client: MakeClient, runtime: str = "runc") -> tuple[Any, Any]:
    """(preloaded, plain): two servers on the same engine, no warm pool."""
    preloaded = await make_client(
        pool={"enabled": False}, sandbox={"preload": True, "runtime": runtime}
    )
    plain = await make_client(
        server_id=f"{TEST_SERVER_ID}-plain",
        pool={"enabled": False},
        sandbox={"preload": False, "runtime": runtime},
    )
    return preloaded, plain


@pytest.mark.parametrize("language", sorted(CORPORA))
def test_the_corpus_is_big_enough(language: str) -> None:
    assert len(CORPORA[language]) >= 30


#: Under gVisor, a sample of each corpus (its kernel is another; the launchers are the same).
UNDER_RUNSC = {
    "python": ["argv", "input_from_stdin", "sigint_while_sleeping", "uncaught_exception"],
    "javascript": ["argv", "readline_prompt", "sigint_default", "uncaught_error", "worker_thread"],
    "ruby": ["argv", "data_after_end", "gets_prompt", "name_error_hints", "sigint_while_sleeping"],
}


@pytest.mark.parametrize(
    ("runtime", "language", "name"),
    [
        ("runc", language, name)
        for language, corpus in sorted(CORPORA.items())
        for name in sorted(corpus)
    ]
    + [
        ("runsc", language, name)
        for language, names in sorted(UNDER_RUNSC.items())
        for name in names
    ],
)
async def test_preloaded_runs_like_the_plain_command(
    make_client: MakeClient, runtime: str, language: str, name: str
) -> None:
    program = CORPORA[language][name]
    preloaded, plain = await _both_ways(make_client, runtime)
    plain_output, plain_end = await run_once(plain, language, program)
    here_output, here_end = await run_once(preloaded, language, program)
    assert (here_output, here_end) == (plain_output, plain_end)
    assert plain_end[0] in {"exited", "signaled", "killed"}, (plain_end, plain_output)


@pytest.mark.parametrize("language", sorted(CMDLINE_PROBE))
async def test_the_preloaded_server_really_runs_inside_the_launcher(
    make_client: MakeClient, language: str
) -> None:
    """The kernel's view is the one difference: the process was started as the launcher."""
    probe = Program(CMDLINE_PROBE[language])
    preloaded, plain = await _both_ways(make_client)
    here_output, _ = await run_once(preloaded, language, probe)
    plain_output, _ = await run_once(plain, language, probe)
    assert STARTED_AS[language] in here_output, here_output
    assert b"/work/main" in plain_output and STARTED_AS[language] not in plain_output


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
async def test_preloaded_ruby_runs_its_program_without_booting_again(
    make_client: MakeClient, runtime: str
) -> None:
    """Ruby rewrites the kernel's view of its command line (both ways read
    `ruby /work/main.rb`), and an exec keeps the process's start time, so the
    proof is how soon the program's first line runs after its file is
    written: in place, no boot lies between them."""
    preloaded, plain = await _both_ways(make_client, runtime)
    here_ms = int((await run_once(preloaded, "ruby", Program(RUBY_FILE_AGE_PROBE)))[0])
    plain_ms = int((await run_once(plain, "ruby", Program(RUBY_FILE_AGE_PROBE)))[0])
    assert here_ms * 3 < plain_ms, (here_ms, plain_ms)
