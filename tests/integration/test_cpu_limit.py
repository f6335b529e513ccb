"""CPU time: a busy loop ends with `exit.limit` "cpu"; a program at a prompt does not.

Terminal runs (the WebSocket) have long clocks and a short CPU budget by
default; batch runs (REST) keep their short clocks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from ce_ws.config import DEFAULT_TERMINAL_CPU_MS
from tests.integration.rest import execute
from tests.integration.terminal import TermClient

BUSY_LOOP = "while True:\n    pass\n"
#: Past the old default wall clock (60 s) and idle clock (30 s) of every run.
THINKING_S = 65
BUSY_CPU_MS = 2000
#: A busy loop gets its share of the host's CPUs only, which a loaded host makes small.
CPU_WAIT_S = 240


async def test_a_busy_loop_dies_of_cpu_time(term: TermClient) -> None:
    assert term.hello["limits"]["defaults"]["cpu_ms"] == DEFAULT_TERMINAL_CPU_MS
    # 2 s, not the default 10 s: on a loaded host (a load of 20 on two cores)
    # 10 s of CPU took a busy loop minutes, and its idle clock ended it first.
    started = await term.run("python", BUSY_LOOP, limits={"cpu_ms": BUSY_CPU_MS})
    assert started["type"] == "started", started
    ended = await term.wait_exit(timeout=CPU_WAIT_S)
    assert (ended["status"], ended["limit"]) == ("timeout", "cpu"), ended
    assert ended["message"] == "the program used its 2 s of CPU time"
    assert ended["cpu_ms"] >= BUSY_CPU_MS


async def test_a_prompt_outlives_the_old_wall_and_idle_clocks(term: TermClient) -> None:
    started = await term.run("python", "name = input('name? ')\nprint('hello', name)")
    assert started["type"] == "started", started
    assert started["limits"] == term.hello["limits"]["defaults"]  # a terminal run's own
    await term.expect(b"name? ")
    await term.drain(THINKING_S)  # a person thinking burns nothing
    assert "exit" not in term.types(), term.messages[-1]
    await term.keys(b"Ada\r")
    answered = await term.wait_exit()
    assert (answered["status"], answered["exit_code"]) == ("exited", 0), answered
    assert "limit" not in answered and answered["wall_ms"] >= THINKING_S * 1000
    assert b"hello Ada" in term.output


async def test_a_batch_run_names_the_limit_that_ended_it(client: TestClient[Any, Any]) -> None:
    cpu, wall = await asyncio.gather(
        execute(client, language="python", code=BUSY_LOOP, limits={"cpu_ms": 500}),
        execute(client, language="bash", code="sleep 30", limits={"wall_ms": 500}),
    )
    assert (cpu["status"], cpu["limit"]) == ("timeout", "cpu"), cpu
    assert (wall["status"], wall["limit"]) == ("timeout", "wall"), wall
    assert wall["wall_ms"] < 5000


async def test_idle_timeout_says_idle(term: TermClient) -> None:
    started = await term.run("bash", "read line", limits={"idle_ms": 500})
    assert started["type"] == "started", started
    ended = await term.wait_exit()
    assert (ended["status"], ended["limit"]) == ("idle_timeout", "idle"), ended
