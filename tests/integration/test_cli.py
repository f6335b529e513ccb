"""The `ce` command against a real server and engine: on a pseudo-terminal, and with pipes."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.cli_process import CuttableProxy, PtyCe, ce_pipes
from tests.integration.server_process import ServerProcess, server_process
from tests.integration.terminal import TermClient

# Small limits, so each status is reached quickly (the wall clock leaves a
# loaded machine time to start Python); no warm pool, so no container
# outlives a test.
_LIMITS = {
    "CE_POOL__ENABLED": "false",
    "CE_DEFAULTS__WALL_MS": "12000",
    "CE_DEFAULTS__MEMORY_MB": "64",
    "CE_DEFAULTS__OUTPUT_BYTES": "65536",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with server_process(**_LIMITS) as running:
        yield running


def write(tmp_path: Path, code: str, name: str = "prog.py") -> str:
    path = tmp_path / name
    path.write_text(code)
    return str(path)


@pytest.fixture
def on_terminal(server: ServerProcess) -> Iterator[list[PtyCe]]:
    """`ce` processes on pseudo-terminals, closed after the test."""
    started: list[PtyCe] = []
    yield started
    for ce in started:
        ce.close()


def start(started: list[PtyCe], *args: str, server: str, **size: int) -> PtyCe:
    ce = PtyCe(*args, server=server, **size)
    started.append(ce)
    return ce


# -- on a terminal ------------------------------------------------------------


def test_typed_input_is_echoed_and_read(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    path = write(tmp_path, 'name = input("name? ")\nprint("hello", name)\n')
    ce = start(on_terminal, "run", path, server=server.url)
    ce.expect(b"name? ")
    during = ce.stty()
    ce.type(b"ada\r")
    ce.expect(b"hello ada")
    assert ce.wait() == 0
    # The echo is the program's terminal's: ours was raw while it ran.
    assert ce.screen.count(b"ada") == 2, bytes(ce.screen)
    assert during != ce.settings_before
    assert ce.stty() == ce.settings_before
    assert b"ce:" not in ce.screen  # it simply exited: nothing to say


def test_ctrl_c_goes_to_the_program(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    # Short sleeps, not input(): Ctrl-C landing between the prompt and the read's
    # system call would wait for a line (CPython checks its handlers between calls).
    code = (
        "import sys, time\n"
        "try:\n"
        "    print('ready> ', end='', flush=True)\n"
        "    for _ in range(600):\n"
        "        time.sleep(0.05)\n"
        "except KeyboardInterrupt:\n"
        "    print('caught ctrl-c')\n"
        "    sys.exit(5)\n"
    )
    ce = start(on_terminal, "run", write(tmp_path, code), server=server.url)
    ce.expect(b"ready> ")
    ce.type(b"\x03")
    ce.expect(b"caught ctrl-c")
    assert ce.wait() == 5
    assert ce.stty() == ce.settings_before


def test_ctrl_d_ends_the_input(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    code = "import sys\nprint('go')\nlines = sys.stdin.read().splitlines()\nprint('read', len(lines), 'lines')\n"
    ce = start(on_terminal, "run", write(tmp_path, code), server=server.url)
    ce.expect(b"go")
    ce.type(b"one\rtwo\r\x04")
    ce.expect(b"read 2 lines")
    assert ce.wait() == 0


def test_the_program_sees_our_window_size_and_its_changes(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    code = (
        "import os, signal\n"
        "signal.signal(signal.SIGWINCH, lambda *_: print('now', tuple(os.get_terminal_size()), flush=True))\n"
        "print('start', tuple(os.get_terminal_size()), flush=True)\n"
        "input()\n"
    )
    ce = start(on_terminal, "run", write(tmp_path, code), server=server.url, cols=90, rows=20)
    ce.expect(b"start (90, 20)")
    ce.resize(121, 33)
    ce.expect(b"now (121, 33)")
    # A window edge dragged: far more resizes than the server takes a second.
    for step in range(150):
        ce.resize(60 + step % 40, 20 + step % 10)
        time.sleep(0.005)  # one signal each (pending ones of a kind merge)
    ce.resize(100, 40)
    ce.expect(b"now (100, 40)")
    ce.type(b"\r")
    assert ce.wait() == 0
    assert b"ce: the server said" not in ce.screen, bytes(ce.screen)  # no resize refused
    assert ce.screen.count(b"now (") < 10  # the sizes in between were never sent


_WAITS = "import sys\nprint('waiting', flush=True)\nsys.stdin.read()\n"


def test_ctrl_backslash_stops_the_run_and_restores_the_terminal(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    ce = start(on_terminal, "run", write(tmp_path, _WAITS), server=server.url)
    ce.expect(b"waiting")
    ce.type(b"\x1c")
    assert ce.wait() == 137
    assert b"ce: stopped with Ctrl-\\" in ce.screen
    assert ce.stty() == ce.settings_before


def test_ctrl_backslash_works_while_the_run_waits_for_a_slot(
    on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    with server_process(CE_POOL__ENABLED="false", CE_CAPACITY__MAX_RUNS="1") as full:
        first = start(on_terminal, "run", write(tmp_path, _WAITS), server=full.url)
        first.expect(b"waiting")
        second = start(on_terminal, "run", write(tmp_path, _WAITS), server=full.url)
        second.expect(b"ce: waiting for a free slot (position 1)")
        second.type(b"typed while queued \x1c")
        assert second.wait() == 137
        assert b"ce: stopped with Ctrl-\\" in second.screen
        assert second.stty() == second.settings_before
        first.type(b"\x1c")
        assert first.wait() == 137


def test_the_server_gone_ends_ce_with_69_and_restores_the_terminal(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    proxy = CuttableProxy(server.port)
    ce = start(on_terminal, "run", write(tmp_path, _WAITS), server=proxy.url)
    ce.expect(b"waiting")
    proxy.cut()
    assert ce.wait() == 69
    assert b"ce: the connection to the server was lost" in ce.screen
    assert ce.stty() == ce.settings_before


def test_a_server_shutting_down_ends_ce_with_69(on_terminal: list[PtyCe], tmp_path: Path) -> None:
    with server_process(CE_POOL__ENABLED="false") as own:
        ce = start(on_terminal, "run", write(tmp_path, _WAITS), server=own.url)
        ce.expect(b"waiting")
        own.terminate()
        assert ce.wait() == 69
    assert b"ce: the server could not run the program: the server is shutting down" in ce.screen
    assert ce.stty() == ce.settings_before


def test_a_signal_to_ce_stops_the_run_and_restores_the_terminal(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    ce = start(on_terminal, "run", write(tmp_path, _WAITS), server=server.url)
    ce.expect(b"waiting")
    ce.process.send_signal(signal.SIGTERM)
    assert ce.wait() == 128 + signal.SIGTERM
    assert b"ce: ce got SIGTERM: the run was killed" in ce.screen
    assert ce.stty() == ce.settings_before


def test_a_compile_error_is_shown_on_the_terminal(
    server: ServerProcess, on_terminal: list[PtyCe], tmp_path: Path
) -> None:
    path = write(tmp_path, "int main(void) { return undeclared; }\n", "broken.c")
    ce = start(on_terminal, "run", path, server=server.url)
    assert ce.wait() == 1
    assert b"undeclared" in ce.screen and b"error" in ce.screen
    assert b"ce: compilation failed" in ce.screen
    assert ce.stty() == ce.settings_before


# -- without a terminal -------------------------------------------------------


def test_pipes_keep_stdout_and_stderr_apart(server: ServerProcess, tmp_path: Path) -> None:
    code = (
        "import sys, math\n"
        "n = int(input())\n"
        "print(math.factorial(n))\n"
        "print('computed', n, file=sys.stderr)\n"
        "print(sys.stdin.isatty(), sys.stdout.isatty(), sys.argv[1:])\n"
    )
    done = ce_pipes(
        "run", write(tmp_path, code, "fact.py"), "--", "a", "-b", stdin=b"5\n", server=server.url
    )
    assert done.returncode == 0, done
    assert done.stdout == b"120\nFalse False ['a', '-b']\n"
    assert done.stderr == b"computed 5\n"


def test_a_program_read_from_stdin(server: ServerProcess) -> None:
    done = ce_pipes("run", "-", "-l", "python", stdin=b"print('from stdin')\n", server=server.url)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"from stdin\n", b"")


def test_piped_input_ends_so_the_program_ends(server: ServerProcess, tmp_path: Path) -> None:
    code = "import sys\nprint(sum(int(line) for line in sys.stdin))\n"
    done = ce_pipes("run", write(tmp_path, code), stdin=b"1\n2\n3\n", server=server.url)
    assert (done.returncode, done.stdout) == (0, b"6\n")


@pytest.mark.parametrize(
    ("name", "code", "status", "why"),
    [
        ("own.py", "import sys\nsys.exit(7)\n", 7, None),
        ("segv.py", "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n", 139, b"SIGSEGV"),
        ("term.sh", "kill -TERM $$\n", 143, b"SIGTERM"),
        ("slow.py", "import time\ntime.sleep(60)\n", 124, b"time limit"),
        (
            "big.py",
            "x = []\nwhile True:\n    x.append(bytearray(8 << 20))\n",
            137,
            b"out of memory",
        ),
        ("broken.c", "int main(void) { return undeclared; }\n", 1, b"compilation failed"),
        ("loud.py", "while True:\n    print('x' * 1000)\n", 153, b"output limit"),
    ],
)
def test_exit_status_as_a_shell_reports_it(
    server: ServerProcess, tmp_path: Path, name: str, code: str, status: int, why: bytes | None
) -> None:
    done = ce_pipes("run", write(tmp_path, code, name), server=server.url)
    assert done.returncode == status, done
    ce_lines = [line for line in done.stderr.splitlines() if line.startswith(b"ce: ")]
    if why is None:
        assert ce_lines == []
    else:
        assert len(ce_lines) == 1 and why in ce_lines[0], done.stderr
    if name.endswith(".c"):
        assert b"undeclared" in done.stderr  # the compiler's messages are shown


def test_an_unreachable_server_is_69(tmp_path: Path) -> None:
    done = ce_pipes("run", write(tmp_path, "print(1)\n"), server=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 69
    assert (
        done.stderr.startswith(b"ce: cannot reach the server at") and done.stderr.count(b"\n") == 1
    )


def test_a_refused_run_is_69(server: ServerProcess, tmp_path: Path) -> None:
    done = ce_pipes("run", write(tmp_path, "print(1)\n"), "-l", "cobol", server=server.url)
    assert done.returncode == 69
    assert b"ce: the server refused the run (unknown_language)" in done.stderr


def test_an_unknown_extension_asks_for_the_language(server: ServerProcess, tmp_path: Path) -> None:
    done = ce_pipes("run", write(tmp_path, "x", "notes.txt"), server=server.url)
    assert done.returncode == 2
    assert b"pass --language" in done.stderr


def test_languages_lists_the_servers_languages(server: ServerProcess) -> None:
    done = ce_pipes("languages", server=server.url)
    assert done.returncode == 0, done
    rows = [line.split() for line in done.stdout.decode().splitlines()]
    assert rows[0][0] == "LANGUAGE"
    assert ["python", "3.11.2", "py,", "python3", ".py"] in rows


# -- ce watch -----------------------------------------------------------------

_PRESENTS = 'print("screen-one")\nname = input("name? ")\nprint(f"hello {name}!")\n'


async def test_watch_follows_a_live_room_read_only(
    server: ServerProcess, on_terminal: list[PtyCe]
) -> None:
    async with TermClient.connect_url(server.ws_url) as presenter:
        await presenter.send(type="share")
        shared = await presenter.next_message("shared")
        started = await presenter.run("python", _PRESENTS)
        assert started["type"] == "started", started
        await presenter.expect(b"name? ")
        # A late joiner: the replay redraws what was on the screen before it came.
        ce = start(on_terminal, "watch", shared["watch_url"], server=server.url)
        ce.expect(b"watching room")
        ce.expect(b"name? ")
        assert b"screen-one" in ce.screen
        ce.type(b"typed by the viewer\r")  # read-only: this goes nowhere
        await presenter.keys("Ada\r")
        ce.expect(b"hello Ada!")
        assert b"typed by the viewer" not in presenter.output
        assert b"typed by the viewer" not in ce.screen  # not even echoed
        ce.expect(b"the run ended: exit status 0")
        await presenter.wait_exit()
        await presenter.send(type="unshare")
        assert ce.wait() == 0
    assert b"ce: the room was closed (unshared)" in ce.screen
    assert ce.stty() == ce.settings_before


async def test_ctrl_c_leaves_a_room_with_130(
    server: ServerProcess, on_terminal: list[PtyCe]
) -> None:
    async with TermClient.connect_url(server.ws_url) as presenter:
        await presenter.send(type="share")
        shared = await presenter.next_message("shared")
        ce = start(on_terminal, "watch", shared["watch_url"], server=server.url)
        ce.expect(b"watching room")
        ce.type(b"\x03")
        assert ce.wait() == 130
        assert (await presenter.next_message("viewers"))["count"] == 1
        assert (await presenter.next_message("viewers"))["count"] == 0
    assert ce.stty() == ce.settings_before


def test_watch_an_unknown_room_is_69(server: ServerProcess) -> None:
    done = ce_pipes("watch", f"{server.url}/watch/no-such-room", server=server.url)
    assert done.returncode == 69
    assert b"ce: cannot watch no-such-room" in done.stderr
