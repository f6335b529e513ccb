"""Control messages (`signal`, `resize`, `ping`, `kill`) against a hostile client.

A flood of control messages must neither outlive a client that left nor
delay a `kill`; a resize flood costs a few engine calls; past the rate limit
each one is refused (`rate_limited`) until the connection is closed 1008.
And SIGCONT undoes SIGSTOP: every process it stopped resumes, a compiler too.

The flood cases raise the control rate limit to its maximum, so that what
they show is the queue (coalescing, dropped with its client), not the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any

import aiohttp
import pytest
from aiodocker.containers import DockerContainer

from tests.hostile.conftest import make_corpus
from tests.hostile.harness import GONE_WITHIN_S, Corpus
from tests.hostile.test_protocol import assert_canary_on_time
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient
from tests.leftovers import run_remains

STOP = json.dumps({"type": "signal", "signal": "SIGSTOP"})
CONT = json.dumps({"type": "signal", "signal": "SIGCONT"})
PING = json.dumps({"type": "ping"})
UNLIMITED_CONTROLS = {"controls_per_second": 10_000, "controls_burst": 100_000}
#: However slow the server, a flood is sent within this long (then cut short).
FLOOD_WITHIN_S = 10.0
KILLED_WITHIN_S = 3.0
PONG_WITHIN_S = 2.0
SLEEPER = "echo ready; sleep 100"


async def flood(ws: aiohttp.ClientWebSocketResponse, frames: list[str]) -> int:
    """Send `frames` as fast as the socket takes them; how many went out."""
    sent = 0
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(FLOOD_WITHIN_S):
            for frame in frames:
                await ws.send_str(frame)
                sent += 1
    return sent


def abort(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Drop the TCP connection at once (a reset, no close handshake)."""
    connection = ws._response.connection
    assert connection is not None and connection.transport is not None
    connection.transport.abort()


async def seconds_until_gone(run_id: str, within_s: float = GONE_WITHIN_S) -> float:
    began = time.monotonic()
    while (remains := await asyncio.to_thread(run_remains, run_id)) != ([], False):
        elapsed = time.monotonic() - began
        assert elapsed < within_s, f"run {run_id} still has {remains} after {elapsed:.1f} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def test_a_flood_then_a_reset_connection_ends_the_run_within_5_s(
    make_client: MakeClient, runtime: str
) -> None:
    """The dead client's queued SIGSTOP/SIGCONT pairs die with it."""
    corpus = await make_corpus(make_client, runtime, capacity=UNLIMITED_CONTROLS)
    with contextlib.suppress(ConnectionError):
        async with corpus.connect() as term:
            started = await term.run("bash", SLEEPER)
            await term.expect(b"ready")
            assert await flood(term.ws, [STOP, CONT] * 5000) == 10_000
            abort(term.ws)
            gone_s = await seconds_until_gone(started["run_id"])
    print(f"gone {gone_s:.2f} s after the reset")
    await assert_canary_on_time(corpus)


async def test_kill_behind_a_flood_of_signals_ends_the_run_at_once(
    make_client: MakeClient, runtime: str
) -> None:
    corpus = await make_corpus(make_client, runtime, capacity=UNLIMITED_CONTROLS)
    async with corpus.connect() as term:
        started = await term.run("bash", SLEEPER)
        await term.expect(b"ready")
        assert await flood(term.ws, [STOP, CONT] * 2000) == 4000
        began = time.monotonic()
        await term.send(type="kill")
        exit_message = await term.wait_exit(timeout=30)
        killed_s = time.monotonic() - began
    assert exit_message["status"] == "killed", exit_message
    assert killed_s < KILLED_WITHIN_S, f"killed {killed_s:.2f} s after the kill"
    print(f"exit {killed_s:.2f} s after the kill")
    await seconds_until_gone(started["run_id"])
    await assert_canary_on_time(corpus)


@pytest.fixture
def engine_resizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the engine's resize calls made by the in-process server."""
    calls = [0]
    real = DockerContainer.resize

    async def counting(self: DockerContainer, **size: Any) -> None:
        calls[0] += 1
        await real(self, **size)

    monkeypatch.setattr(DockerContainer, "resize", counting)
    return calls


STTY_LOOP = "echo ready; while read -r line; do stty size; done"


async def test_a_resize_flood_is_coalesced_and_delays_nothing(
    make_client: MakeClient, runtime: str, engine_resizes: list[int]
) -> None:
    corpus = await make_corpus(make_client, runtime, capacity=UNLIMITED_CONTROLS)
    sizes = [(40 + i % 100, 10 + i % 50) for i in range(5000)] + [(123, 45)]
    async with corpus.connect() as term:
        await term.run("bash", STTY_LOOP, tty={"cols": 80, "rows": 24})
        await term.expect(b"ready")
        before = engine_resizes[0]
        frames = [json.dumps({"type": "resize", "cols": c, "rows": r}) for c, r in sizes]
        assert await flood(term.ws, frames) == len(frames)
        began = time.monotonic()
        await term.send(type="ping")
        await term.next_message("pong", timeout=30)
        pong_s = time.monotonic() - began
        assert pong_s < PONG_WITHIN_S, f"pong {pong_s:.2f} s after the ping"
        assert await _settled_size(term) == "45 123"
        calls = engine_resizes[0] - before
        await term.send(type="kill")
        await term.wait_exit()
    print(f"pong after {pong_s:.2f} s, {calls} engine resizes for {len(sizes)} resize messages")
    assert calls <= len(sizes) // 20, f"{calls} engine resizes for {len(sizes)} messages"


async def _settled_size(term: TermClient) -> str:
    """The size `stty` reports once the last resize is through (asked a few times)."""
    last = ""
    for _ in range(20):
        await term.keys("\r")
        await term.drain(0.25)
        found = re.findall(rb"(?m)^(\d+ \d+)\r$", bytes(term.output))
        last = found[-1].decode() if found else ""
        if last == "45 123":
            break
    return last


async def test_control_messages_past_the_rate_limit_are_refused_then_closed(
    make_client: MakeClient, runtime: str
) -> None:
    """Default limits: signals and pings beyond the burst get `rate_limited`, then 1008."""
    corpus = await make_corpus(make_client, runtime)
    async with corpus.connect() as term:
        started = await term.run("bash", SLEEPER)
        await term.expect(b"ready")
        await flood(term.ws, [CONT, PING] * 1000)
        replies: list[dict[str, Any]] = []
        while (message := await term.ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT:
            replies.append(json.loads(message.data))
        assert (message.type, message.data) == (aiohttp.WSMsgType.CLOSE, 1008)
    errors = [reply["code"] for reply in replies if reply["type"] == "error"]
    assert errors and set(errors) == {"rate_limited"}, errors[:5]
    pongs = sum(reply["type"] == "pong" for reply in replies)
    # Of the 1000 pings, those within the burst (100, shared with the
    # signals) and its refill while the flood was handled were answered.
    assert 0 < pongs < 250, pongs
    await seconds_until_gone(started["run_id"])
    await assert_canary_on_time(corpus)


CHILD_COUNTER = """\
sh -c 'i=0; while :; do i=$((i+1)); echo "child $i"; sleep 0.1; done' &
echo ready
wait
"""


async def test_sigcont_resumes_a_child_that_sigstop_stopped(corpus: Corpus) -> None:
    async def stop_then_continue(term: TermClient) -> None:
        await term.expect(b"child 3\r")
        await term.send(type="signal", signal="SIGSTOP")
        await term.drain(0.5)  # output already in flight
        paused_at = len(term.output)
        await term.drain(1.0)
        assert len(term.output) == paused_at, "the child kept printing while stopped"
        last = max(int(n) for n in re.findall(rb"child (\d+)", bytes(term.output)))
        await term.send(type="signal", signal="SIGCONT")
        await term.expect(f"child {last + 1}\r".encode(), timeout=5)
        await term.send(type="kill")

    outcome = await corpus.attack("bash", CHILD_COUNTER, during=stop_then_continue)
    assert outcome.status == "killed", outcome.exit


# About 3 s of gcc -O2 on an idle machine (4096 statements from nested
# macros): time to stop it. On a loaded one, several times that: hence the
# generous compile limit; a compiler left stopped meets it whatever the load.
SLOW_TO_COMPILE = """\
#define A(x) x x x x
#define B(x) A(A(x))
#define C(x) B(B(x))
#include <stdio.h>
int main(void) {
    volatile unsigned s = 0;
    unsigned i = 1;
    C(B(s += i * 7u; i ^= s >> 3;))
    puts("compiled and ran");
    return 0;
}
"""
COMPILE_MS = 60_000


async def test_sigstop_during_compile_then_sigcont_lets_the_compile_finish(
    make_client: MakeClient, runtime: str
) -> None:
    corpus = await make_corpus(make_client, runtime, sandbox={"compile_ms": COMPILE_MS})
    compiled_after: list[float] = []

    async def stop_the_compiler(term: TermClient) -> None:
        assert (await term.next_message("stage"))["stage"] == "compile"
        await asyncio.sleep(0.3)  # gcc is busy by now
        await term.send(type="signal", signal="SIGSTOP")
        await term.drain(1.0)
        stages = [m["stage"] for m in term.messages if m["type"] == "stage"]
        assert stages == ["compile"], f"the compile was over before SIGSTOP: {stages}"
        await term.send(type="signal", signal="SIGCONT")
        began = time.monotonic()
        assert (await term.next_message("stage", timeout=COMPILE_MS / 1000))["stage"] == "run"
        compiled_after.append(time.monotonic() - began)

    outcome = await corpus.attack("c", SLOW_TO_COMPILE, during=stop_the_compiler)
    assert (outcome.status, outcome.exit["stage"], outcome.exit["exit_code"]) == (
        "exited",
        "run",
        0,
    ), outcome.exit
    assert b"compiled and ran" in outcome.output
    print(f"compiled {compiled_after[0]:.1f} s after SIGCONT (limit {COMPILE_MS / 1000:.0f} s)")
