"""Control messages (`signal`, `resize`, `ping`, `kill`) against a hostile client.

SIGCONT undoes SIGSTOP: every process it stopped resumes, a compiler too.
"""

from __future__ import annotations

import asyncio
import re
import time

from tests.hostile.conftest import make_corpus
from tests.hostile.harness import Corpus
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient

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
