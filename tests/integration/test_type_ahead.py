"""Type-ahead: what a client sends right after `run`, before `started`, reaches the program."""

from __future__ import annotations

import json

from tests.integration.terminal import TermClient

ECHO_TWO_LINES = "print('first:', input())\nprint('second:', input())"


async def test_keys_sent_before_started_reach_the_program(term: TermClient) -> None:
    # Nothing is read between the frames: all of them are in before `started`.
    await term.send(type="run", language="python", code=ECHO_TWO_LINES)
    await term.keys(b"typed ahead\r")
    await term.send(type="stdin", data="as a message\r")
    ended = await term.wait_exit()
    assert (ended["status"], ended["exit_code"]) == ("exited", 0), (ended, term.text())
    assert b"first: typed ahead" in term.output and b"second: as a message" in term.output
    assert term.types().index("started") < term.types().index("exit")


async def test_the_run_messages_stdin_comes_before_keys_typed_ahead(term: TermClient) -> None:
    run = {"type": "run", "language": "python", "code": ECHO_TWO_LINES, "stdin": "given\r"}
    await term.ws.send_str(json.dumps(run))
    await term.keys(b"typed\r")
    ended = await term.wait_exit()
    assert ended["status"] == "exited", (ended, term.text())
    assert term.text().index("first: given") < term.text().index("second: typed")


async def test_a_long_type_ahead_is_kept_whole_and_in_order(term: TermClient) -> None:
    """More chunks typed ahead than the stdin queue holds: they wait, none is lost."""
    count = 100
    code = f"import sys\nprint(sum(int(input()) for _ in range({count})))"
    await term.send(type="run", language="python", code=code, stdin="0\r")
    for n in range(1, count):
        await term.keys(f"{n}\r".encode())
    ended = await term.wait_exit()
    assert ended["status"] == "exited", (ended, term.text()[-300:])
    assert str(sum(range(count))).encode() in term.output
