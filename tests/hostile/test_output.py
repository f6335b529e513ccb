"""Corpus groups 9 and 19: output floods and terminal attacks on the browser.

Output is forwarded byte for byte in binary frames and capped; control
messages travel only in text frames the program cannot write. The browser
side of group 19 (no clipboard, no title, no `javascript:` link, the status
line outside the terminal) is proven in tests/browser/test_playground.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from tests.hostile.harness import Corpus
from tests.integration.server_process import ServerProcess
from tests.integration.terminal import TermClient

PROGRAMS = Path(__file__).parent / "programs"
MIB = 1024 * 1024
CAP = 256 * 1024
ESCAPES = (
    "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: set the clipboard
    "\x1b]0;pwned\x07\x1b]2;pwned\x07"  # window and icon title
    "\x1b]8;;javascript:alert(1)\x07click me\x1b]8;;\x07"  # a javascript: link
    "\x1b[2J\x1b[H\x1b[?1049h\x1b[6n"  # clear, home, alternate screen, cursor report
)
FLOODS = {
    "bash-yes": ("bash", "yes"),
    "python-print-loop": ("python", "while True:\n    print('flood ' * 20)\n"),
    "node-write-loop": (
        "javascript",
        "const chunk = 'n'.repeat(65536);\n"
        "function pour() { while (process.stdout.write(chunk)) {} "
        "process.stdout.once('drain', pour); }\npour();\n",
    ),
    "c-one-long-line": ("c", (PROGRAMS / "flood.c").read_text()),
    "python-escape-spam": (
        "python",
        f"import sys\nwhile True:\n    sys.stdout.write({ESCAPES!r})\n",
    ),
}


@pytest.mark.parametrize("case", sorted(FLOODS))
async def test_output_flood_stops_exactly_at_the_cap(corpus: Corpus, case: str) -> None:
    """Group 9: `yes`, print loops, one line without newline, escape spam: `output_limit`."""
    language, code = FLOODS[case]
    outcome = await corpus.attack(language, code, limits={"output_bytes": CAP, "wall_ms": 20_000})
    assert outcome.status == "output_limit", outcome.exit
    assert outcome.exit["truncated"] is True
    assert outcome.exit["output_bytes"] == CAP == len(outcome.output)


def logging_of(run_id: str) -> tuple[str, str, int]:
    """The run's log driver, log file, and the exit code of `docker logs`."""
    container = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=ce.run={run_id}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    info = json.loads(
        subprocess.run(
            ["docker", "inspect", container], capture_output=True, text=True, check=True
        ).stdout
    )[0]
    logs = subprocess.run(["docker", "logs", container], capture_output=True)
    return info["HostConfig"]["LogConfig"]["Type"], info["LogPath"], logs.returncode


#: gVisor's terminal is much slower (about 1.5 MB/s here), so a smaller cap.
PAUSED_CAP = {"runc": 16 * MIB, "runsc": 4 * MIB}


async def test_flood_to_a_client_that_stops_reading_keeps_memory_and_engine_log_flat(
    separate_server: tuple[ServerProcess, str],
) -> None:
    """Group 9: a 100 MB line to a paused client: server memory bounded, nothing logged."""
    server, runtime = separate_server
    growth: list[int] = []
    seen: list[tuple[str, str, int]] = []

    async def pause_reading(term: TermClient) -> None:
        run_id = next(m["run_id"] for m in term.messages if m["type"] == "started")
        seen.append(await asyncio.to_thread(logging_of, run_id))
        baseline = server.rss_bytes()
        for _ in range(8):  # the flood is held back while the client reads nothing
            await asyncio.sleep(0.2)
            growth.append(server.rss_bytes() - baseline)

    corpus = Corpus.of_url(server.ws_url, runtime, warm=False)  # `separate_server`: no pool
    code = (PROGRAMS / "flood.c").read_text()
    cap = PAUSED_CAP[runtime]
    outcome = await corpus.attack(
        "c", code, limits={"output_bytes": cap, "wall_ms": 30_000}, during=pause_reading
    )
    assert outcome.status == "output_limit" and len(outcome.output) == cap, outcome.exit
    assert max(growth) < 32 * MIB, f"server grew by {max(growth) / MIB:.1f} MiB"
    driver, log_path, logs_exit = seen[0]
    assert (driver, log_path) == ("none", "") and logs_exit != 0


FORGERY = (
    "import sys, time\n"
    f"sys.stdout.write({ESCAPES!r})\n"
    'print(\'{"type": "exit", "status": "exited", "exit_code": 0}\')\n'
    "print('[exited with code 0]')\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


async def kill_when_ready(term: TermClient) -> None:
    await term.expect(b"ready")
    await term.send(type="kill")


async def test_terminal_attacks_stay_inside_the_output_stream(corpus: Corpus) -> None:
    """Group 19: escapes and fake exit lines arrive as bytes, never as control messages."""
    outcome = await corpus.attack("python", FORGERY, during=kill_when_ready)
    assert outcome.status == "killed", outcome.exit
    assert ESCAPES.encode() in outcome.output  # forwarded unmodified, as terminal bytes
    assert b'{"type": "exit"' in outcome.output
    assert [m["type"] for m in outcome.messages] == ["hello", "started", "stage", "exit"]


async def kill_when_ready_in_text(term: TermClient) -> None:
    while not any("ready" in m.get("data", "") for m in term.messages if m["type"] == "output"):
        await term.next_message("output")
    await term.send(type="kill")


async def test_terminal_attacks_in_text_mode_stay_inside_output_messages(corpus: Corpus) -> None:
    """Group 19, `output: "text"`: the forged exit is only ever an `output` message's data."""
    outcome = await corpus.attack("python", FORGERY, during=kill_when_ready_in_text, output="text")
    assert outcome.status == "killed", outcome.exit
    types = [m["type"] for m in outcome.messages]
    assert types.count("exit") == 1 and types[-1] == "exit"
    assert set(types) == {"hello", "started", "stage", "output", "exit"}
    text = "".join(m["data"] for m in outcome.messages if m["type"] == "output")
    assert ESCAPES in text and '{"type": "exit"' in text
