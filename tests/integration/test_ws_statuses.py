"""Every `exit.status` of the contract, produced for real."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.container_spec import assert_oom_peak
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient


async def test_exit_code_is_reported(term: TermClient) -> None:
    exit_message = await term.run_to_exit("python", "import sys; sys.exit(42)")
    assert (exit_message["status"], exit_message["exit_code"], exit_message["signal"]) == (
        "exited",
        42,
        None,
    )


async def test_segfault_reports_the_signal(term: TermClient) -> None:
    exit_message = await term.run_to_exit("c", "int main(void){ volatile int *p = 0; return *p; }")
    assert exit_message["status"] == "exited"
    assert exit_message["signal"] == "SIGSEGV" and exit_message["exit_code"] == 139


async def test_wall_clock_limit_gives_timeout(term: TermClient) -> None:
    exit_message = await term.run_to_exit("bash", "sleep 100", limits={"wall_ms": 1500})
    assert exit_message["status"] == "timeout"
    assert 1500 <= exit_message["wall_ms"] < 4000


async def test_wall_clock_holds_while_the_program_is_stopped(term: TermClient) -> None:
    await term.run("bash", "echo go; kill -STOP $$", limits={"wall_ms": 1500})
    exit_message = await term.wait_exit(timeout=10)
    assert exit_message["status"] == "timeout"


async def test_no_input_and_no_output_gives_idle_timeout(term: TermClient) -> None:
    exit_message = await term.run_to_exit("python", "input()", limits={"idle_ms": 1000})
    assert exit_message["status"] == "idle_timeout"
    assert exit_message["wall_ms"] < 5000


async def test_input_keeps_an_idle_run_alive(term: TermClient) -> None:
    import asyncio

    await term.run("python", "for _ in range(3): input()\nprint('done')", limits={"idle_ms": 1000})
    for _ in range(3):
        await asyncio.sleep(0.6)
        await term.keys("x\r")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "exited", exit_message


async def test_memory_limit_gives_oom(term: TermClient) -> None:
    program = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n"
    exit_message = await term.run_to_exit("python", program, limits={"memory_mb": 64})
    assert exit_message["status"] == "oom", exit_message
    assert_oom_peak(exit_message["memory_peak_bytes"], 64)


async def test_child_killed_by_memory_limit_is_reported_as_exited(term: TermClient) -> None:
    program = (
        "import subprocess, sys\n"
        "child = subprocess.run([sys.executable, '-c', 'x = []\\nwhile True: x.append(bytearray(8 << 20))'])\n"
        "print('child ended with', child.returncode)\n"
    )
    exit_message = await term.run_to_exit("python", program, limits={"memory_mb": 64})
    assert exit_message["status"] == "exited" and exit_message["exit_code"] == 0, exit_message
    assert "memory limit" in exit_message["message"]
    assert b"child ended with -9" in term.output


async def test_compile_stage_has_its_own_time_limit(make_client: MakeClient) -> None:
    client = await make_client(sandbox={"compile_ms": 1000})
    async with TermClient.connect(client) as term:
        # Compile-time work that takes gcc many seconds (each loop stays
        # under gcc's constexpr iteration limit).
        slow = (
            "constexpr long spin() { long s = 0;\n"
            "  for (long i = 0; i < 20000; ++i) for (long j = 0; j < 20000; ++j) s += i ^ j;\n"
            "  return s; }\n"
            "static_assert(spin() > 0);\nint main() {}\n"
        )
        exit_message = await term.run_to_exit("cpp", slow, limits={"wall_ms": 60_000})
    assert (exit_message["status"], exit_message["stage"]) == ("timeout", "compile"), exit_message
    assert exit_message["message"] == "the compile stage ran out of time"
    assert exit_message["wall_ms"] < 10_000


async def test_output_cap_gives_output_limit(term: TermClient) -> None:
    exit_message = await term.run_to_exit("bash", "yes", limits={"output_bytes": 10_000})
    assert exit_message["status"] == "output_limit"
    assert exit_message["truncated"] is True
    assert exit_message["output_bytes"] == 10_000 == len(term.output)


async def test_kill_message_gives_killed(term: TermClient) -> None:
    await term.run("bash", "echo started; sleep 100")
    await term.expect(b"started")
    await term.send(type="kill")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "killed"
    assert exit_message["wall_ms"] < 5000


async def test_kill_during_compile_gives_killed(term: TermClient) -> None:
    await term.run("cpp", "#include <bits/stdc++.h>\n" * 50 + "int main(){}")
    await term.next_message("stage")
    await term.send(type="kill")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "killed" and exit_message["stage"] == "compile"


async def test_engine_failure_gives_error(make_client: MakeClient) -> None:
    client: TestClient[Any, Any] = await make_client(
        sandbox={"image": "code-executor-no-such-image"}
    )
    async with TermClient.connect(client) as term:
        await term.send(type="run", language="python", code="print(1)")
        exit_message = await term.next_message("exit")
        assert exit_message["status"] == "error"
        assert "no-such-image" in exit_message["message"]
        assert "started" not in term.types()


async def test_exit_is_sent_exactly_once(term: TermClient) -> None:
    await term.run("bash", "yes", limits={"output_bytes": 5000, "wall_ms": 2000})
    await term.wait_exit()
    await term.send(type="ping")
    await term.next_message("pong")
    assert term.types().count("exit") == 1
