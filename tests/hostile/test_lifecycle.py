"""Corpus groups 11, 12, 16: programs that never end, outlive main, or never read.

Every run here must end by the server's own deadline (or by itself), and the
harness checks its container and staging folder are then gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from tests.hostile.harness import Corpus, During
from tests.integration.server_process import ServerProcess
from tests.integration.terminal import TermClient

MIB = 1024 * 1024


async def ready_then(term: TermClient, keys: bytes) -> None:
    await term.expect(b"ready")
    await term.keys(keys)


async def press_ctrl_z(term: TermClient) -> None:
    await ready_then(term, b"\x1a")


NEVER_ENDING: dict[str, tuple[str, str, dict[str, int], During | None, str]] = {
    "sleep-forever": ("bash", "echo ready; sleep infinity", {"wall_ms": 2000}, None, "timeout"),
    "blocked-input": ("python", "input()", {"idle_ms": 1500}, None, "idle_timeout"),
    "ctrl-z": ("bash", "echo ready; sleep 100", {"wall_ms": 2500}, press_ctrl_z, "timeout"),
    "stop-self": ("bash", "echo ready; kill -STOP $$", {"wall_ms": 2000}, None, "timeout"),
}


@pytest.mark.parametrize("case", sorted(NEVER_ENDING))
async def test_a_program_that_never_ends_meets_the_deadline(corpus: Corpus, case: str) -> None:
    """Group 11: sleep forever, blocked input(), Ctrl-Z, kill -STOP $$."""
    language, code, limits, during, status = NEVER_ENDING[case]
    outcome = await corpus.attack(language, code, limits=limits, during=during)
    assert outcome.status == status, outcome.exit
    deadline_ms = limits.get("wall_ms", limits.get("idle_ms", 0))
    assert deadline_ms <= outcome.exit["wall_ms"] < deadline_ms + 2000


SURVIVORS = """\
import os, subprocess, time
subprocess.Popen(['setsid', 'sh', '-c', 'while :; do echo survivor-setsid; sleep 0.2; done'])
subprocess.Popen(['nohup', 'sh', '-c', 'while :; do echo survivor-nohup; sleep 0.2; done'])
if os.fork() == 0:
    if os.fork() == 0:
        os.setsid()
        while True:
            print('survivor-double-fork', flush=True)
            time.sleep(0.2)
    os._exit(0)
time.sleep(0.5)
print('main-exits', flush=True)
"""


async def test_survivors_end_with_the_main_program(corpus: Corpus) -> None:
    """Group 12: setsid, nohup and a double fork do not keep the run (or container) alive."""
    outcome = await corpus.attack("python", SURVIVORS, limits={"wall_ms": 10_000})
    assert (outcome.status, outcome.exit["exit_code"]) == ("exited", 0), outcome.exit
    assert b"survivor-double-fork" in outcome.output and b"main-exits" in outcome.output
    assert outcome.exit["wall_ms"] < 3000, "the survivors kept the run alive"


NEVER_READS = {
    # The terminal echoes what it receives: the echo is output, and the
    # output cap ends the run.
    "echo-on": ("import time\nprint('ready', flush=True)\ntime.sleep(60)\n", "output_limit"),
    # A raw terminal neither echoes nor discards (a canonical one drops what
    # overflows its line): the input backs up to the client until the deadline.
    "raw": (
        "import time, tty\ntty.setraw(0)\nprint('ready', flush=True)\ntime.sleep(60)\n",
        "timeout",
    ),
}


@pytest.mark.parametrize("mode", sorted(NEVER_READS))
async def test_stdin_flood_into_a_program_that_never_reads_is_bounded(
    separate_server: tuple[ServerProcess, str], mode: str
) -> None:
    """Group 16: the server pushes back; its memory stays flat; the run still ends."""
    code, status = NEVER_READS[mode]
    server, runtime = separate_server
    samples: list[int] = []
    sent = [0]
    flooding: list[bool] = []  # whether the sender was still pushing at the end

    async def flood(term: TermClient) -> None:
        await term.expect(b"ready")
        baseline = server.rss_bytes()
        sender = asyncio.create_task(_send_forever(term, b"x" * (64 * 1024), sent))
        try:
            for _ in range(12):
                await asyncio.sleep(0.2)
                samples.append(server.rss_bytes() - baseline)
            flooding.append(not sender.done())
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender

    corpus = Corpus.of_url(server.ws_url, runtime, warm=False)  # `separate_server`: no pool
    outcome = await corpus.attack("python", code, limits={"wall_ms": 4000}, during=flood)
    assert outcome.status == status, outcome.exit
    # The run ends by its deadline even while its input is backed up (the
    # engine has kept such a stream open for minutes after the kill).
    assert outcome.exit["wall_ms"] < 4000 + 3500, outcome.exit
    assert max(samples) < 32 * MIB, f"server grew by {max(samples) / MIB:.1f} MiB"
    if status == "timeout":  # the whole flood met a live, never-reading program
        assert flooding == [True], "the flood stopped by itself: nothing was pushed back"
        assert sent[0] < 64 * MIB, f"{sent[0] / MIB:.0f} MiB accepted: no backpressure"


async def _send_forever(term: TermClient, chunk: bytes, sent: list[int]) -> None:
    began = time.monotonic()
    while time.monotonic() - began < 10:
        await term.keys(chunk)
        sent[0] += len(chunk)
