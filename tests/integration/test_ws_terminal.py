"""A real terminal: isatty, TERM, resize, Ctrl-C, signals, every byte passes."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.integration.terminal import TermClient

LOOP_UNTIL_INTERRUPT = """
import sys, time
try:
    print("looping", flush=True)
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:
    print("interrupted")
    sys.exit(7)
"""
C_LOOP = '#include <stdio.h>\nint main(void){ puts("spinning"); fflush(stdout); for(;;){} }'


async def test_program_sees_a_real_tty_with_xterm(term: TermClient) -> None:
    program = "import os, sys; print(sys.stdin.isatty(), sys.stdout.isatty(), os.environ['TERM'])"
    await term.run_to_exit("python", program)
    assert "True True xterm-256color" in term.text()


async def test_initial_size_and_resize_change_stty_size(term: TermClient) -> None:
    await term.run("bash", "stty size; read line; stty size", tty={"cols": 90, "rows": 33})
    await term.expect(b"33 90")
    await term.send(type="resize", cols=120, rows=40)
    await asyncio.sleep(0.2)
    await term.keys("\r")
    await term.expect(b"40 120")
    assert (await term.wait_exit())["exit_code"] == 0


@pytest.mark.parametrize("how", ["byte", "message"])
async def test_ctrl_c_interrupts_a_python_loop(term: TermClient, how: str) -> None:
    await term.run("python", LOOP_UNTIL_INTERRUPT)
    await term.expect(b"looping")
    if how == "byte":
        await term.keys(b"\x03")
    else:
        await term.send(type="signal", signal="SIGINT")
    exit_message = await term.wait_exit()
    assert b"interrupted" in term.output
    assert exit_message["status"] == "exited" and exit_message["exit_code"] == 7


@pytest.mark.parametrize("how", ["byte", "message"])
async def test_ctrl_c_ends_a_c_program_with_sigint(term: TermClient, how: str) -> None:
    await term.run("c", C_LOOP)
    await term.expect(b"spinning")
    if how == "byte":
        await term.keys(b"\x03")
    else:
        await term.send(type="signal", signal="SIGINT")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "exited"
    assert exit_message["signal"] == "SIGINT" and exit_message["exit_code"] == 130


@pytest.mark.parametrize("pipes", [False, True])
async def test_sigint_stops_a_shell_loop_as_ctrl_c_would(term: TermClient, pipes: bool) -> None:
    # The signal reaches the loop's foreground `sleep` too: bash, waiting
    # for it, ends only when its child died of SIGINT as well.
    terminal = {"tty": False} if pipes else {}
    await term.run("bash", "echo looping; while true; do sleep 1; done", **terminal)
    await term.expect(b"looping")
    await term.send(type="signal", signal="SIGINT")
    exit_message = await term.wait_exit(timeout=5)
    assert exit_message["status"] == "exited"
    assert exit_message["signal"] == "SIGINT" and exit_message["exit_code"] == 130


CATCHABLE = ["SIGINT", "SIGTERM", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGTSTP"]
SIGNAL_REPORTER = f"""
import signal, sys, time
def report(number, frame):
    print("got", signal.Signals(number).name, flush=True)
for name in {CATCHABLE!r}:
    signal.signal(getattr(signal, name), report)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


async def test_every_catchable_contract_signal_reaches_the_program(term: TermClient) -> None:
    await term.run("python", SIGNAL_REPORTER)
    await term.expect(b"ready")
    for name in CATCHABLE:
        await term.send(type="signal", signal=name)
        await term.expect(f"got {name}".encode(), timeout=5)
    await term.send(type="signal", signal="SIGKILL")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "killed"


async def test_sigstop_pauses_and_sigcont_resumes(term: TermClient) -> None:
    program = "import time\nn = 0\nwhile True:\n    n += 1\n    print('tick', n, flush=True)\n    time.sleep(0.05)\n"
    await term.run("python", program)
    await term.expect(b"tick 3")
    await term.send(type="signal", signal="SIGSTOP")
    await term.drain(0.5)  # output already in flight
    paused_at = len(term.output)
    await term.drain(1.0)
    assert len(term.output) == paused_at, "the program kept printing while stopped"
    await term.send(type="signal", signal="SIGCONT")
    last_tick = int(term.text().split()[-1])
    await term.expect(f"tick {last_tick + 1}\r".encode(), timeout=5)
    await term.send(type="kill")
    assert (await term.wait_exit())["status"] == "killed"


async def test_every_byte_including_ctrl_p_reaches_a_raw_terminal(term: TermClient) -> None:
    program = """
import os, sys, tty, hashlib
tty.setraw(0)
print("raw", end="\\r\\n", flush=True)
data = b""
while len(data) < 258:
    data += os.read(0, 258)
print("sha", hashlib.sha256(data).hexdigest(), end="\\r\\n", flush=True)
"""
    await term.run("python", program)
    await term.expect(b"raw")
    await term.keys(b"\x10\x11")  # Ctrl-P Ctrl-Q: Docker's default detach keys
    await term.keys(bytes(range(256)))
    await term.wait_exit()
    expected = hashlib.sha256(b"\x10\x11" + bytes(range(256))).hexdigest()
    assert f"sha {expected}".encode() in term.output, term.text()
