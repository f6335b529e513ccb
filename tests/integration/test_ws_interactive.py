"""Interactive I/O: keystrokes, stdin messages, EOF, live output, text mode."""

from __future__ import annotations

import time

from tests.integration.terminal import TermClient

GREETER = """
while True:
    try:
        name = input("name? ")
    except EOFError:
        print("bye")
        break
    print(f"Hello, {name}!")
"""


async def test_input_loop_answered_keystroke_by_keystroke(term: TermClient) -> None:
    await term.run("python", GREETER)
    await term.expect(b"name? ")
    for key in "Ada":
        await term.keys(key)
    await term.keys("\r")
    await term.expect(b"Hello, Ada!")
    for key in "Bob\r":
        await term.keys(key)
    await term.expect(b"Hello, Bob!")
    await term.send(type="eof")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "exited" and exit_message["exit_code"] == 0
    assert b"bye" in term.output


async def test_input_loop_answered_with_stdin_messages(term: TermClient) -> None:
    await term.run("python", GREETER)
    await term.expect(b"name? ")
    await term.send(type="stdin", data="Grace\n")
    await term.expect(b"Hello, Grace!")
    await term.send(type="stdin", data="Linus\r")
    await term.expect(b"Hello, Linus!")
    await term.send(type="kill")
    assert (await term.wait_exit())["status"] == "killed"


async def test_eof_ends_cat(term: TermClient) -> None:
    await term.run("bash", "cat; echo cat-done")
    await term.keys("some text\r")
    await term.expect(b"some text\r\nsome text")  # the terminal's echo, then cat's copy
    await term.send(type="eof")
    exit_message = await term.wait_exit()
    assert exit_message["exit_code"] == 0
    assert b"cat-done" in term.output


async def test_output_arrives_while_the_program_still_runs(term: TermClient) -> None:
    program = "import time\nfor i in range(4):\n    print(f'tick {time.time():.6f}', flush=True)\n    time.sleep(0.5)\n"
    await term.run("python", program)
    await term.wait_exit()
    ticks = []
    for arrived, chunk in term.output_times:
        for line in chunk.decode().splitlines():
            if line.startswith("tick "):
                ticks.append(arrived - float(line.split()[1]))
    assert len(ticks) == 4, term.text()
    assert max(ticks) < 0.2, f"delays {ticks}"


async def test_text_output_never_splits_a_multibyte_character(term: TermClient) -> None:
    program = (
        "import sys, time\n"
        "for part in (b'caf\\xc3', b'\\xa9 \\xe2\\x82', b'\\xac \\xf0\\x9f', b'\\x98\\x80\\n'):\n"
        "    sys.stdout.buffer.write(part); sys.stdout.buffer.flush(); time.sleep(0.15)\n"
    )
    await term.run("python", program, output="text")
    exit_message = await term.wait_exit()
    assert exit_message["exit_code"] == 0
    texts = [m["data"] for m in term.messages if m["type"] == "output"]
    assert len(texts) >= 2, texts
    assert "".join(texts) == "café € 😀\r\n"
    assert all("\ufffd" not in text for text in texts)
    assert term.output == b""  # no binary frames in text mode


async def test_program_output_is_forwarded_unmodified(term: TermClient) -> None:
    program = "import sys; sys.stdout.buffer.write(bytes(range(32, 256))); sys.stdout.flush()"
    await term.run("python", program)
    await term.wait_exit()
    assert bytes(range(32, 127)) in term.output
    assert bytes(range(128, 256)) in term.output


async def test_exit_reports_wall_time_and_memory(term: TermClient) -> None:
    began = time.monotonic()
    exit_message = await term.run_to_exit(
        "python", "import time; x = bytearray(30 * 1024 * 1024); time.sleep(0.3)"
    )
    assert 300 <= exit_message["wall_ms"] <= (time.monotonic() - began) * 1000
    assert exit_message["memory_peak_bytes"] >= 30 * 1024 * 1024
    assert exit_message["output_bytes"] == 0 and exit_message["truncated"] is False
