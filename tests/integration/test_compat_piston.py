"""Piston v2 under `/piston`, against the real engine.

The REST half is driven by the npm `piston-client` package, unchanged, run
by node (`piston_client.mjs`); the `/connect` WebSocket by a client written
from Piston's readme; the REST schema by schemathesis against the live
server's `/piston/openapi.json`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import schemathesis
from aiohttp.test_utils import TestClient
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from ce_ws.api.appkeys import RUNNER
from ce_ws.logs import EVENTS_LOGGER
from tests.helpers import eventually
from tests.integration.conftest import MakeClient
from tests.integration.schema_checks import SCHEMA_SERVER_ENV, every_operation_conforms
from tests.integration.server_process import ServerProcess, server_process
from tests.leftovers import run_remains

ROOT = Path(__file__).resolve().parents[2]
CLIENT_SCRIPT = Path(__file__).with_name("piston_client.mjs")
CONNECT = "/piston/api/v2/connect"
_NODE_TIMEOUT_S = 60.0
_WS_TIMEOUT_S = 30.0

# -- the npm piston-client, unchanged -----------------------------------------


async def piston_client(client: TestClient[Any, Any], scenario: str) -> Any:
    """Run one scenario of `piston_client.mjs` against `client`'s server; its answer."""
    node = shutil.which("node")
    assert node, "node is needed (scripts/build-assets.sh installs it)"
    assert (ROOT / "node_modules" / "piston-client").is_dir(), "run scripts/build-assets.sh"
    server = f"http://{client.host}:{client.port}/piston"
    process = await asyncio.create_subprocess_exec(
        node,
        str(CLIENT_SCRIPT),
        server,
        scenario,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(_NODE_TIMEOUT_S):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return json.loads(stdout)


async def test_piston_client_lists_our_runtimes_under_pistons_names(
    client: TestClient[Any, Any],
) -> None:
    runtimes = await piston_client(client, "runtimes")
    by_name = {entry["language"]: entry for entry in runtimes}
    assert {"python", "javascript", "c", "c++", "bash", "ruby"} <= set(by_name)
    assert by_name["python"]["version"] == "3.11.2"
    assert "py" in by_name["python"]["aliases"] and by_name["c++"]["runtime"] == "gcc"


async def test_piston_client_runs_python_with_stdin_and_its_default_args(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    result = await piston_client(client, "hello")
    assert (result["language"], result["version"]) == ("python", "3.11.2")
    run = result["run"]
    # piston-client sends args ["1", "2", "3"] and no Content-Type; Piston adds stdin's newline.
    assert run["stdout"] == "hello world ['1', '2', '3']\n" == run["output"]
    assert (run["code"], run["signal"], run["status"], run["stderr"]) == (0, None, None, "")
    assert "compile" not in result
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == EVENTS_LOGGER]
    [end] = [event for event in events if event["event"] == "run_end"]
    assert (end["via"], end["status"]) == ("piston", "exited")


async def test_piston_client_gets_a_c_compile_error_as_the_run_too(
    client: TestClient[Any, Any],
) -> None:
    result = await piston_client(client, "compileError")
    compiled = result["compile"]
    assert compiled["code"] == 1 and compiled["status"] == "RE"
    assert "error" in compiled["stderr"] and compiled["output"] == compiled["stderr"]
    assert result["run"] == compiled  # as Piston answers when the compile stage failed
    assert (result["language"], compiled["ce_status"]) == ("c", "compile_error")


async def test_piston_client_gets_a_runtime_errors_exit_code(client: TestClient[Any, Any]) -> None:
    run = (await piston_client(client, "runtimeError"))["run"]
    assert (run["code"], run["signal"], run["status"], run["stdout"]) == (3, None, "RE", "dying\n")


async def test_piston_client_run_timeout_kills_the_program(client: TestClient[Any, Any]) -> None:
    run = (await piston_client(client, "timeout"))["run"]
    assert (run["code"], run["signal"], run["status"]) == (None, "SIGKILL", "TO")
    assert run["ce_status"] == "timeout" and 1000 <= run["wall_time"] < 5000


async def test_a_memory_limit_reached_is_oom_not_a_crash(client: TestClient[Any, Any]) -> None:
    job = {
        "language": "python",
        "version": "3",
        "files": [{"content": "x = bytearray(512 * 1024 * 1024)\nprint(len(x))"}],
        "run_memory_limit": 64 * 1024 * 1024,
    }
    response = await client.post("/piston/api/v2/execute", data=json.dumps(job))
    run = (await response.json())["run"]
    assert (run["ce_status"], run["signal"], run["code"]) == ("oom", "SIGKILL", None)
    assert "memory" in run["message"]


# -- the /connect WebSocket, as Piston's readme describes it ------------------


class PistonSocket:
    """A `/connect` client: sends frames, keeps every message, knows the close code."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    async def init(self, language: str, code: str, **fields: Any) -> None:
        await self.send(
            type="init", language=language, version="*", files=[{"content": code}], **fields
        )

    def stdout(self) -> str:
        return "".join(
            m["data"] for m in self.messages if m["type"] == "data" and m["stream"] == "stdout"
        )

    async def until(self, *, stdout: str | None = None, closed: bool = False) -> None:
        """Read until `stdout` has appeared, or until the socket closes."""
        async with asyncio.timeout(_WS_TIMEOUT_S):
            while not (stdout is not None and stdout in self.stdout()):
                frame = await self.ws.receive()
                if frame.type is not aiohttp.WSMsgType.TEXT:
                    assert closed, f"closed {self.ws.close_code} before {stdout!r}: {self.messages}"
                    return
                self.messages.append(json.loads(frame.data))

    def types(self) -> list[str]:
        return [message["type"] for message in self.messages]


@pytest.fixture
async def connect() -> Any:
    """Open `/connect` sockets on a test server (closed at the end).

    One server per test: two with the test owner id would reap each other's containers.
    """
    opened: list[aiohttp.ClientWebSocketResponse] = []

    async def open_socket(on: TestClient[Any, Any]) -> PistonSocket:
        ws = await on.ws_connect(CONNECT)
        opened.append(ws)
        return PistonSocket(ws)

    yield open_socket
    for ws in opened:
        await ws.close()


GREETER = "name = input()\nprint(f'hello {name}', flush=True)\n"
CATCHER = """
import signal, sys, time
def caught(number, frame):
    print('caught SIGINT', flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, caught)
print('ready', flush=True)
time.sleep(60)
"""


async def test_input_is_answered_over_data_then_exit_then_close_4999(
    client: TestClient[Any, Any], connect: Any
) -> None:
    socket = await connect(client)
    await socket.init("python", GREETER, stdin="discarded, as Piston does\n")
    await socket.send(type="data", stream="stdin", data="Ada\n")
    await socket.until(closed=True)
    assert socket.ws.close_code == 4999
    assert socket.types()[:2] == ["runtime", "stage"] and socket.types()[-1] == "exit"
    assert socket.messages[0] == {"type": "runtime", "language": "python", "version": "3.11.2"}
    assert socket.stdout() == "hello Ada\n"
    exit_message = socket.messages[-1]
    assert (exit_message["stage"], exit_message["code"], exit_message["signal"]) == ("run", 0, None)


async def test_sigint_is_delivered_and_caught(client: TestClient[Any, Any], connect: Any) -> None:
    socket = await connect(client)
    await socket.init("python", CATCHER)
    await socket.until(stdout="ready\n")
    await socket.send(type="signal", signal="SIGINT")
    await socket.until(closed=True)
    assert "caught SIGINT\n" in socket.stdout()
    assert (socket.messages[-1]["type"], socket.messages[-1]["code"]) == ("exit", 0)
    assert socket.ws.close_code == 4999


async def test_a_compiled_language_reports_both_stages(
    client: TestClient[Any, Any], connect: Any
) -> None:
    socket = await connect(client)
    await socket.init("c", '#include <stdio.h>\nint main(void) { puts("built"); return 2; }\n')
    await socket.until(closed=True)
    stages = [(m["type"], m.get("stage")) for m in socket.messages if m["type"] != "data"]
    assert stages == [
        ("runtime", None), ("stage", "compile"), ("exit", "compile"), ("stage", "run"), ("exit", "run"),
    ]  # fmt: skip
    assert socket.stdout() == "built\n" and socket.messages[-1]["code"] == 2


async def test_output_over_the_cap_ends_the_run(make_client: MakeClient, connect: Any) -> None:
    socket = await connect(await make_client(defaults={"output_bytes": 1000}))
    await socket.init("python", "while True:\n    print('x' * 100, flush=True)\n")
    await socket.until(closed=True)
    exit_message = socket.messages[-1]
    assert (exit_message["type"], exit_message["status"]) == ("exit", "OL")
    assert exit_message["ce_status"] == "output_limit" and len(socket.stdout()) <= 1000
    assert socket.ws.close_code == 4999


async def test_data_before_init_is_closed_4003(client: TestClient[Any, Any], connect: Any) -> None:
    socket = await connect(client)
    await socket.send(type="data", stream="stdin", data="too early\n")
    await socket.until(closed=True)
    assert socket.ws.close_code == 4003


async def test_no_init_in_time_is_closed_4001(make_client: MakeClient, connect: Any) -> None:
    socket = await connect(await make_client(piston={"init_timeout_s": 0.2}))
    await socket.until(closed=True)
    assert socket.ws.close_code == 4001 and socket.messages == []


@pytest.mark.parametrize(
    ("message", "close_code"),
    [
        ({"type": "init", "language": "python", "version": "*", "files": [{"content": "x"}]}, 4000),
        ({"type": "data", "stream": "stdout", "data": "x"}, 4004),
        ({"type": "signal", "signal": "SIGNOPE"}, 4005),
    ],
)
async def test_protocol_mistakes_after_init_close_with_pistons_codes(
    client: TestClient[Any, Any], connect: Any, message: dict[str, Any], close_code: int
) -> None:
    socket = await connect(client)
    await socket.init("python", "import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    await socket.until(stdout="up\n")
    await socket.send(**message)
    await socket.until(closed=True)
    assert socket.ws.close_code == close_code


async def test_an_unknown_runtime_is_an_error_then_close_4002(
    client: TestClient[Any, Any], connect: Any
) -> None:
    socket = await connect(client)
    await socket.init("cobol", "x")
    await socket.until(closed=True)
    assert socket.messages == [{"type": "error", "message": "cobol-* runtime is unknown"}]
    assert socket.ws.close_code == 4002


async def test_a_client_that_disconnects_takes_its_container_along(
    client: TestClient[Any, Any], connect: Any
) -> None:
    socket = await connect(client)
    await socket.init("python", "import time\nprint('up', flush=True)\ntime.sleep(60)\n")
    await socket.until(stdout="up\n")
    [run] = client.app[RUNNER].live_runs()
    containers, staged = await asyncio.to_thread(run_remains, run.run_id)
    assert len(containers) == 1 and staged
    await socket.ws.close()
    await eventually(
        lambda: run_remains(run.run_id) == ([], False), timeout_s=5.0, what="the container gone"
    )


# -- schemathesis against the live server's Piston document -------------------


@pytest.fixture(scope="module")
def live_server() -> Iterator[ServerProcess]:
    with server_process(**SCHEMA_SERVER_ENV) as server:
        yield server


@pytest.fixture(scope="module")
def piston_schema(live_server: ServerProcess) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/piston/openapi.json")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_piston_answer_is_documented_in_pistons_shape_and_none_is_a_500(
    piston_schema: BaseSchema, live_server: ServerProcess, mode: GenerationMode
) -> None:
    every_operation_conforms(piston_schema, live_server.url, mode, also=_in_pistons_shape)


def _in_pistons_shape(response: Any) -> None:
    if response.status_code >= 400:
        assert set(response.json()) == {"message"}, response.text
