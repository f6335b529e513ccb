"""`POST /api/v1/execute` on the real engine: every language, streams apart, every status."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.container_spec import assert_oom_peak
from tests.integration.rest import EXECUTE, execute
from tests.integration.server_process import server_process

# Each reads one line of stdin and greets it: hello world and stdin in one run.
GREETERS = {
    "python": "name = input()\nprint(f'hello, {name}')",
    "javascript": (
        "const name = require('fs').readFileSync(0, 'utf8').trim();\nconsole.log(`hello, ${name}`);"
    ),
    "c": (
        "#include <stdio.h>\n#include <string.h>\n"
        "int main(void) { char name[64];\n"
        "  if (!fgets(name, sizeof name, stdin)) return 1;\n"
        '  name[strcspn(name, "\\n")] = 0; printf("hello, %s\\n", name); return 0; }'
    ),
    "cpp": (
        "#include <iostream>\n#include <string>\n"
        "int main() { std::string name; std::getline(std::cin, name);\n"
        '  std::cout << "hello, " << name << std::endl; }'
    ),
    "bash": 'read -r name; echo "hello, $name"',
    "ruby": 'name = gets.chomp\nputs "hello, #{name}"',
}


@pytest.mark.parametrize("language", sorted(GREETERS))
async def test_every_language_greets_the_name_given_on_stdin(
    client: TestClient[Any, Any], language: str
) -> None:
    result = await execute(client, language=language, code=GREETERS[language], stdin="world\n")
    assert (result["status"], result["exit_code"], result["signal"]) == ("exited", 0, None), result
    assert result["stdout"] == result["output"] == "hello, world\n"
    assert result["stderr"] == ""
    assert result["language"] == language and result["truncated"] is False
    if language in {"c", "cpp"}:
        assert result["compile"] == {"status": "exited", "exit_code": 0, "output": ""}
    else:
        assert "compile" not in result


async def test_stdout_and_stderr_come_back_apart_and_interleaved(
    client: TestClient[Any, Any],
) -> None:
    code = "echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; echo out2; sleep 0.1; echo err2 >&2"
    result = await execute(client, language="bash", code=code)
    assert result["stdout"] == "out1\nout2\n"
    assert result["stderr"] == "err1\nerr2\n"
    assert result["output"] == "out1\nerr1\nout2\nerr2\n"
    assert result["output_bytes"] == len(result["output"])


#: Each writes to stderr first, at once: its words can reach the server before "go".
STDERR_FIRST = {
    "python": "import sys\nsys.stderr.write('boom\\n')\nsys.exit(1)",
    "bash": "echo boom >&2; exit 1",
}


@pytest.mark.parametrize("language", sorted(STDERR_FIRST))
async def test_a_programs_first_words_on_stderr_are_never_lost(
    make_client: Any, language: str
) -> None:
    # Stderr is a pipe apart from the launcher's stdout: a preloaded Python
    # lost its first stderr line about one run in four before the fix.
    client = await make_client(capacity={"runs_per_minute": 1000})
    results = [
        await execute(client, language=language, code=STDERR_FIRST[language]) for _ in range(30)
    ]
    assert [r["stderr"] for r in results if r["stderr"] != "boom\n"] == []
    assert {(r["status"], r["exit_code"]) for r in results} == {("exited", 1)}


async def test_stdin_is_closed_after_the_whole_input(client: TestClient[Any, Any]) -> None:
    code = "import sys\nlines = sys.stdin.read().splitlines()\nprint(len(lines), lines[-1])"
    result = await execute(client, language="python", code=code, stdin="a\nb\nlast\n")
    assert result["stdout"] == "3 last\n"


async def test_without_stdin_the_program_reads_end_of_input(client: TestClient[Any, Any]) -> None:
    result = await execute(client, language="bash", code="cat; echo done")
    assert result["stdout"] == "done\n" and result["status"] == "exited"


async def test_invalid_utf8_output_is_replaced_not_fatal(client: TestClient[Any, Any]) -> None:
    result = await execute(client, language="bash", code=r"printf 'caf\xc3\xa9 \xff\n'")
    assert result["stdout"] == "café \ufffd\n"


async def test_args_files_and_correlation_id_work_as_on_the_websocket(
    client: TestClient[Any, Any],
) -> None:
    result = await execute(
        client,
        language="python",
        files=[
            {"name": "app.py", "content": "import sys, helper\nprint(helper.WORD, sys.argv[1:])"},
            {"name": "helper.py", "content": "WORD = 'hi'"},
        ],
        args=["one", "two words"],
        id="req-9",
    )
    assert result["stdout"] == "hi ['one', 'two words']\n"
    assert result["id"] == "req-9"


async def test_exit_code_is_reported(client: TestClient[Any, Any]) -> None:
    result = await execute(client, language="python", code="import sys; sys.exit(42)")
    assert (result["status"], result["exit_code"], result["signal"]) == ("exited", 42, None)


async def test_crash_reports_the_signal(client: TestClient[Any, Any]) -> None:
    code = "int main(void) { volatile int *p = 0; return *p; }"
    result = await execute(client, language="c", code=code)
    assert (result["status"], result["exit_code"], result["signal"]) == ("exited", 139, "SIGSEGV")


async def test_compile_error_reports_the_compile_stage(client: TestClient[Any, Any]) -> None:
    result = await execute(client, language="c", code="int main(void) { return undefined_name; }")
    assert result["status"] == "compile_error" and result["exit_code"] == 1
    compile_stage = result["compile"]
    assert compile_stage["status"] == "compile_error" and compile_stage["exit_code"] == 1
    assert "undefined_name" in compile_stage["output"]
    assert result["stdout"] == result["stderr"] == result["output"] == ""


async def test_wall_clock_limit_gives_timeout(client: TestClient[Any, Any]) -> None:
    result = await execute(client, language="bash", code="sleep 100", limits={"wall_ms": 1500})
    assert result["status"] == "timeout"
    assert 1500 <= result["wall_ms"] < 4000


async def test_memory_limit_gives_oom(client: TestClient[Any, Any]) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n"
    result = await execute(client, language="python", code=code, limits={"memory_mb": 64})
    assert result["status"] == "oom", result
    assert_oom_peak(result["memory_peak_bytes"], 64)


async def test_output_cap_gives_output_limit(client: TestClient[Any, Any]) -> None:
    result = await execute(client, language="bash", code="yes", limits={"output_bytes": 10_000})
    assert result["status"] == "output_limit" and result["truncated"] is True
    assert result["output_bytes"] == 10_000 == len(result["stdout"]) == len(result["output"])


async def test_engine_failure_gives_error_status(make_client: Any) -> None:
    client = await make_client(sandbox={"image": "code-executor-no-such-image"})
    result = await execute(client, language="python", code="print(1)")
    assert result["status"] == "error"
    assert "no-such-image" in result["message"]


async def test_server_shutdown_ends_a_rest_run_with_error() -> None:
    with server_process(CE_POOL__ENABLED="false") as server:
        async with aiohttp.ClientSession() as session:
            body = {"language": "bash", "code": "echo running; sleep 100"}
            posted = asyncio.create_task(session.post(f"{server.url}{EXECUTE}", json=body))
            for _ in range(100):  # until the run holds its slot
                async with session.get(f"{server.url}/readyz") as readiness:
                    if (await readiness.json())["active_runs"] == 1:
                        break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            server.terminate()
            async with await posted as response:
                assert response.status == 200
                result = await response.json()
        assert result["status"] == "error" and "shutting down" in result["message"]
        assert await asyncio.to_thread(server.process.wait, 30) == 0
