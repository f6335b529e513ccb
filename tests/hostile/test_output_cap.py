"""Corpus group 9, compile stage: the compiler's output shares the program's cap.

A few kilobytes of C can make gcc print hundreds of megabytes (a file that
includes itself twice per level, each time printing a long `#warning`). The
compile and run output of one run share one cap, exact to the byte, on the
WebSocket and on REST; past it the compiler is stopped (`output_limit`,
stage `compile`). A REST response is written in pieces, so even one at the
largest cap never stalls the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.hostile.harness import Corpus
from tests.integration.rest import EXECUTE
from tests.integration.server_process import ServerProcess

MIB = 1024 * 1024
#: The server's largest output cap (`maxima.output_bytes`): the biggest response there is.
MAX_CAP = 16 * MIB
_WARNING = "#warning " + "A" * 30_000 + "\n"


def include_flood(depth: int) -> str:
    """C whose compiler prints 2**depth warnings of 30 KB each (ASCII; depth 7: 15 MB)."""
    return (
        f"#if __INCLUDE_LEVEL__ < {depth}\n#include __FILE__\n#include __FILE__\n#endif\n"
        f"{_WARNING}"
        "#if __INCLUDE_LEVEL__ == 0\nint main(void) { return 0; }\n#endif\n"
    )


#: Finding 5: compiler output already over the cap, then a program that writes 60000 bytes.
WARNINGS_THEN_WRITE = (
    "#include <string.h>\n#include <unistd.h>\n"
    + "".join(f"#warning warning number {n}\n" for n in range(40))
    + "int main(void) {\n"
    "    static char buf[60000];\n"
    "    memset(buf, 'x', sizeof buf);\n"
    "    return write(1, buf, sizeof buf) == sizeof buf ? 0 : 1;\n"
    "}\n"
)
SMALL_CAP = 1000


@dataclass
class Lag:
    """How late a task sleeping `TICK_S` over and over woke, at worst.

    `late_s` is the whole delay; `busy_s` the part of it this process spent
    working (the loop's callbacks, or a thread of ours holding the GIL),
    which leaves out the time other processes held the CPU of a loaded
    machine.
    """

    TICK_S = 0.005
    late_s: float = 0.0
    busy_s: float = 0.0


@contextlib.asynccontextmanager
async def loop_lag() -> AsyncIterator[Lag]:
    """Measure this event loop's lag (the in-process server shares it) while inside."""
    lag = Lag()

    async def tick() -> None:
        while True:
            wall, cpu = time.monotonic(), time.process_time()
            await asyncio.sleep(Lag.TICK_S)
            late = time.monotonic() - wall - Lag.TICK_S
            lag.late_s = max(lag.late_s, late)
            lag.busy_s = max(lag.busy_s, min(late, time.process_time() - cpu))

    ticking = asyncio.create_task(tick())
    try:
        yield lag
    finally:
        ticking.cancel()


def delivered_bytes(result: dict[str, Any]) -> int:
    """How many output bytes a REST response holds: compiler output and program output."""
    compiled = result.get("compile") or {"output": ""}
    return len((compiled["output"] + result["output"]).encode())


def assert_capped_in_compile(ended: dict[str, Any], cap: int) -> None:
    """An `exit` or a REST result: the run ended at the cap during its compile stage."""
    assert ended["status"] == "output_limit", ended
    assert ended["truncated"] is True
    assert ended["output_bytes"] == cap
    if "stage" in ended:  # the WebSocket's `exit`
        assert ended["stage"] == "compile"
    else:  # REST's result
        assert ended["compile"]["status"] == "output_limit"


async def test_compiler_flood_on_the_websocket_stops_exactly_at_the_cap(corpus: Corpus) -> None:
    """Finding 1: 15 MB of warnings against a 64 KiB cap: 64 KiB arrive, the compiler is stopped."""
    cap = 64 * 1024
    outcome = await corpus.attack("c", include_flood(7), limits={"output_bytes": cap})
    assert_capped_in_compile(outcome.exit, cap)
    assert len(outcome.output) == cap


async def test_compiler_flood_on_rest_is_capped_and_never_stalls_the_loop(corpus: Corpus) -> None:
    """Finding 1: 60 MB of warnings at the largest cap: 16 MiB back, the loop never stalls."""
    assert corpus.client is not None
    body = {"language": "c", "code": include_flood(9), "limits": {"output_bytes": MAX_CAP}}
    async with loop_lag() as lag:
        response = await corpus.client.post(EXECUTE, json=body)
        raw = await response.read()
    result = await asyncio.to_thread(json.loads, raw)
    assert response.status == 200, result
    assert_capped_in_compile(result, MAX_CAP)
    assert delivered_bytes(result) == MAX_CAP
    stalled = f"the loop stalled {lag.busy_s * 1000:.0f} ms (late {lag.late_s * 1000:.0f} ms)"
    assert lag.busy_s < 0.1, stalled


async def test_compiler_flood_on_rest_keeps_server_memory_flat(
    separate_server: tuple[ServerProcess, str],
) -> None:
    """Finding 1: 60 MB of warnings against a 1 KiB cap: 1 KiB back, server memory flat."""
    server, _ = separate_server
    cap = 1024
    body = {"language": "c", "code": include_flood(9), "limits": {"output_bytes": cap}}
    baseline = server.rss_bytes()
    growth = [0]
    async with aiohttp.ClientSession() as session:
        posted = asyncio.ensure_future(session.post(f"{server.url}{EXECUTE}", json=body))
        while not posted.done():
            growth.append(server.rss_bytes() - baseline)
            await asyncio.sleep(0.02)
        async with await posted as response:
            assert response.status == 200
            result = await response.json()
    assert_capped_in_compile(result, cap)
    assert delivered_bytes(result) == cap
    assert max(growth) < 32 * MIB, f"server grew by {max(growth) / MIB:.1f} MiB"


async def test_output_after_compiler_warnings_stays_at_the_cap_on_the_websocket(
    corpus: Corpus,
) -> None:
    """Finding 5: warnings over the cap, then a 60000-byte write: exactly the cap arrives."""
    outcome = await corpus.attack("c", WARNINGS_THEN_WRITE, limits={"output_bytes": SMALL_CAP})
    assert_capped_in_compile(outcome.exit, SMALL_CAP)
    assert len(outcome.output) == SMALL_CAP


async def test_output_after_compiler_warnings_stays_at_the_cap_on_rest(corpus: Corpus) -> None:
    """Finding 5 on REST: compiler output and stdout together are exactly the cap."""
    assert corpus.client is not None
    body = {"language": "c", "code": WARNINGS_THEN_WRITE, "limits": {"output_bytes": SMALL_CAP}}
    response = await corpus.client.post(EXECUTE, json=body)
    result = await response.json()
    assert response.status == 200, result
    assert_capped_in_compile(result, SMALL_CAP)
    assert delivered_bytes(result) == SMALL_CAP
