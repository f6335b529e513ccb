"""The `ce` command's pure logic: exit statuses, extensions, addresses, the terminal restore."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios
import tomllib
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from ce_ws.cli import main as cli_main
from ce_ws.cli.endpoints import BadAddress, room_address, server_url, ws_url
from ce_ws.cli.extensions import language_for
from ce_ws.cli.outcome import refusal_ending, run_ending
from ce_ws.cli.output import OutputSink
from ce_ws.cli.terminal import raw_terminal
from ce_ws.protocol import ErrorMessage, Exit, LanguageInfo, Status

ROOT = Path(__file__).resolve().parents[2]


def exit_message(status: Status, **fields: Any) -> Exit:
    base: dict[str, Any] = {
        "run_id": "r",
        "stage": "run",
        "status": status,
        "exit_code": None,
        "signal": None,
        "wall_ms": 5000,
        "output_bytes": 10,
        "truncated": False,
    }
    return Exit(**{**base, **fields})


@pytest.mark.parametrize(
    ("message", "code", "says"),
    [
        (exit_message(Status.EXITED, exit_code=0), 0, None),
        (exit_message(Status.EXITED, exit_code=3), 3, None),
        (exit_message(Status.EXITED, exit_code=139, signal="SIGSEGV"), 139, "SIGSEGV"),
        # A server that leaves the code out still gets 128 + N.
        (exit_message(Status.EXITED, signal="SIGTERM"), 143, "SIGTERM"),
        (exit_message(Status.COMPILE_ERROR, stage="compile", exit_code=1), 1, "compilation"),
        (exit_message(Status.TIMEOUT), 124, "time limit reached after 5 s"),
        (exit_message(Status.IDLE_TIMEOUT), 124, "idle"),
        (exit_message(Status.OOM), 137, "out of memory"),
        (exit_message(Status.KILLED), 137, "killed"),
        (exit_message(Status.OUTPUT_LIMIT, truncated=True), 153, "output limit"),
        (exit_message(Status.ERROR, message="the engine failed"), 69, "the engine failed"),
    ],
)
def test_every_status_has_the_exit_status_a_shell_gives(
    message: Exit, code: int, says: str | None
) -> None:
    ending = run_ending(message)
    assert ending.code == code
    if says is None:
        assert ending.why is None
    else:
        assert ending.why is not None and says in ending.why


def test_a_child_killed_by_the_memory_limit_is_said_but_keeps_the_code() -> None:
    ending = run_ending(
        exit_message(Status.EXITED, exit_code=0, message="a child reached the memory limit")
    )
    assert ending.code == 0 and ending.why == "a child reached the memory limit"


def test_a_refusal_is_69_and_says_what_to_do() -> None:
    ending = refusal_ending(ErrorMessage(code="unauthorized", message="a valid token is required"))
    assert ending.code == 69
    assert ending.why is not None and "unauthorized" in ending.why and "--token" in ending.why


LANGUAGES = [
    LanguageInfo(
        name="python", version="3", aliases=["py", "python3"], compiled=False, entry_file="main.py"
    ),
    LanguageInfo(name="c", version="12", aliases=[], compiled=True, entry_file="main.c"),
    LanguageInfo(
        name="cpp", version="12", aliases=["c++", "cxx"], compiled=True, entry_file="main.cpp"
    ),
    LanguageInfo(
        name="bash", version="5", aliases=["sh", "shell"], compiled=False, entry_file="main.sh"
    ),
    LanguageInfo(name="ruby", version="3", aliases=["rb"], compiled=False, entry_file="main.rb"),
]


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("fact.py", "python"),
        ("dir.v2/PROG.PY", "python"),
        ("a.c", "c"),
        ("a.cpp", "cpp"),
        ("a.cxx", "cpp"),
        ("run.sh", "bash"),
        ("x.rb", "ruby"),
        ("notes.txt", None),
        ("Makefile", None),
        (".bashrc", None),
    ],
)
def test_the_language_comes_from_the_extension(path: str, language: str | None) -> None:
    assert language_for(path, LANGUAGES) == language


def test_an_entry_file_extension_wins_over_an_alias() -> None:
    shell = LanguageInfo(
        name="shell-lang", version="1", aliases=["sh"], compiled=False, entry_file="main.shl"
    )
    assert language_for("x.sh", [shell, *LANGUAGES]) == "bash"


@pytest.mark.parametrize(
    ("given", "socket"),
    [
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/api/v1/ws"),
        ("127.0.0.1:9000", "ws://127.0.0.1:9000/api/v1/ws"),
        ("https://ce.example.org/ce", "wss://ce.example.org/ce/api/v1/ws"),
        ("https://ce.example.org/ce/?x=1", "wss://ce.example.org/ce/api/v1/ws"),
    ],
)
def test_the_websocket_is_below_the_server_url(given: str, socket: str) -> None:
    assert str(ws_url(server_url(given))) == socket


@pytest.mark.parametrize(
    ("given", "server", "room"),
    [
        ("http://h:8080/watch/AbC", "http://h:8080/", "AbC"),
        ("https://h/ce/watch/AbC", "https://h/ce/", "AbC"),
        ("http://h:1/page.html?room=zz", "http://h:1/", "zz"),
        ("http://h:1/page.html#room=yy", "http://h:1/", "yy"),
    ],
)
def test_a_room_url_gives_its_server_and_room(given: str, server: str, room: str) -> None:
    address = room_address(given)
    assert (address.server, address.room) == (URL(server), room)


@pytest.mark.parametrize("given", ["ftp://h/watch/x", "http://h:8080/", "not a url"])
def test_a_room_url_without_a_room_is_refused(given: str) -> None:
    with pytest.raises(BadAddress):
        room_address(given)


def test_pipe_frames_go_to_their_stream(tmp_path: Path) -> None:
    out, err = (os.open(tmp_path / name, os.O_CREAT | os.O_WRONLY) for name in ("out", "err"))
    sink = OutputSink(tty=False, stdout_fd=out, stderr_fd=err)
    for frame in (b"\x01to out\n", b"\x02to err\n", b"\x03compiler says\n", b"\x01partial"):
        sink.write(frame)
    os.close(out)
    os.close(err)
    assert (tmp_path / "out").read_bytes() == b"to out\npartial"
    assert (tmp_path / "err").read_bytes() == b"to err\ncompiler says\n"
    assert not sink.mid_line()  # stderr's last line is finished


def test_the_terminal_is_restored_after_an_exception() -> None:
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        inside: list[Any] = []

        def fail_while_raw() -> None:
            with raw_terminal(slave):
                inside.append(termios.tcgetattr(slave))
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            fail_while_raw()
        assert inside != [before]  # raw while inside
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_pip_install_gives_the_ce_command() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["ce"].partition(":")
    assert module == cli_main.__name__ and getattr(cli_main, function) is cli_main.main


def test_the_ce_command_is_a_client_not_a_layer_of_the_server() -> None:
    check = (
        "import sys, ce_ws.cli.main;"
        " loaded = [m for m in sys.modules if m.startswith(('ce_ws.runs', 'ce_ws.sandbox', 'ce_ws.api', 'aiodocker'))];"
        " assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
