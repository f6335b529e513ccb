"""`run.tty: false` on the WebSocket: pipes, each output frame tagged with its stream."""

from __future__ import annotations

from tests.integration.terminal import TermClient

_BOTH = (
    "import sys\n"
    "print(sys.stdin.isatty(), sys.stdout.isatty())\n"
    "line = sys.stdin.readline()\n"
    "print('out', line.strip(), flush=True)\n"
    "print('err', line.strip(), file=sys.stderr, flush=True)\n"
    "print('rest', repr(sys.stdin.read()))\n"
)


def streams(term: TermClient) -> dict[int, bytes]:
    """The output frames joined per stream byte."""
    joined: dict[int, bytes] = {}
    for _, frame in term.output_times:
        joined[frame[0]] = joined.get(frame[0], b"") + frame[1:]
    return joined


async def test_without_a_tty_frames_carry_their_stream_and_eof_closes_stdin(
    term: TermClient,
) -> None:
    started = await term.run("python", _BOTH, tty=False)
    assert started["type"] == "started", started
    await term.keys("ada\nmore\n")
    await term.send(type="eof")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "exited" and exit_message["exit_code"] == 0, exit_message
    # No terminal: no echo, no CR LF, stdout and stderr apart.
    assert streams(term) == {1: b"False False\nout ada\nrest 'more\\n'\n", 2: b"err ada\n"}


async def test_without_a_tty_text_output_names_its_stream(term: TermClient) -> None:
    await term.run("python", _BOTH, tty=False, output="text", stdin="bob\n")
    await term.send(type="eof")
    await term.wait_exit()
    texts: dict[str, str] = {}
    for message in term.messages:
        if message["type"] == "output":
            texts[message["stream"]] = texts.get(message["stream"], "") + message["data"]
    assert texts == {"stdout": "False False\nout bob\nrest ''\n", "stderr": "err bob\n"}


async def test_without_a_tty_compiler_messages_are_their_own_stream(term: TermClient) -> None:
    exit_message = await term.run_to_exit("c", "int main(void) { return nope; }\n", tty=False)
    assert exit_message["status"] == "compile_error"
    compiler = streams(term)
    assert list(compiler) == [3] and b"nope" in compiler[3] and b"\r\n" not in compiler[3]


async def test_a_resize_without_a_tty_is_ignored(term: TermClient) -> None:
    await term.run("python", "import sys\nprint(len(sys.stdin.read()))\n", tty=False)
    await term.send(type="resize", cols=100, rows=30)
    await term.send(type="eof")
    exit_message = await term.wait_exit()
    assert exit_message["exit_code"] == 0
    assert "error" not in term.types()


async def test_tty_true_is_not_a_terminal_size(term: TermClient) -> None:
    await term.send(type="run", language="python", code="print(1)", tty=True)
    error = await term.next_message("error")
    assert (error["code"], error["field"]) == ("bad_message", "tty")
