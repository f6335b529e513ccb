"""`prepare`: a program compiled while its author pauses runs without compiling.

The playground sends one when typing stops; each test here is what a client
sees over a real WebSocket, on the real engine and compile cache.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import seconds_since
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient

# __TIME__ is the compile's wall clock; the unused variable makes gcc -Wall warn.
STAMPED = (
    '#include <stdio.h>\nint main(void) { int unused; printf("compiled at %s\\n", __TIME__); }\n'
)


async def test_a_prepared_program_runs_without_compiling_and_shows_its_warnings(
    term: TermClient,
) -> None:
    await term.send(type="prepare", language="c", code=STAMPED, id="p1")
    prepared = await term.next_message("prepared", "error", timeout=60)
    assert prepared == {"type": "prepared", "language": "c", "outcome": "ready", "id": "p1"}
    await term.drain(0.3)
    assert term.types() == ["hello", "prepared"] and term.output == b""  # nothing else
    await asyncio.sleep(1.1)  # a compile now would print a later time
    ran_at = datetime.datetime.now()
    exit_message = await term.run_to_exit("c", STAMPED)
    assert (exit_message["status"], exit_message["exit_code"]) == ("exited", 0), term.text()
    before, stamp = term.text().rsplit("compiled at ", 1)  # gcc quotes the line first
    stamp = stamp[:8]
    assert 1 <= seconds_since(stamp, ran_at) <= 60, (stamp, ran_at)
    # The compile was skipped, yet what it said is shown, before the program's output.
    assert "unused variable" in before, term.text()


async def test_a_prepare_of_broken_code_says_so_and_keeps_nothing(term: TermClient) -> None:
    await term.send(type="prepare", language="c", code="int main(void) { return nope; }")
    prepared = await term.next_message("prepared", "error", timeout=60)
    assert prepared["outcome"] == "compile_error", prepared
    assert "compiler exited with code 1" in prepared["message"]
    exit_message = await term.run_to_exit("c", "int main(void) { return nope; }")
    assert exit_message["status"] == "compile_error" and "nope" in term.text()


async def test_a_program_too_big_to_keep_is_not_said_to_be_ready(
    make_client: MakeClient,
) -> None:
    """Compiled, but nothing kept: the run will compile again, and the answer says so."""
    client = await make_client(compile_cache={"max_binary_bytes": 64 * 1024})
    big = "char data[100000] = {1};\nint main(void) { return data[0] - 1; }\n"  # 100 kB program
    async with TermClient.connect(client) as term:
        await term.send(type="prepare", language="c", code=big)
        prepared = await term.next_message("prepared", "error", timeout=60)
    assert prepared["outcome"] == "skipped", prepared
    assert "too big for the compile cache" in prepared["message"], prepared


async def test_an_interpreted_language_has_nothing_to_prepare(term: TermClient) -> None:
    await term.send(type="prepare", language="python", code="print(1)")
    prepared = await term.next_message("prepared", "error")
    assert prepared["outcome"] == "skipped", prepared
    assert prepared["message"] == "python is not compiled: its runs start at once"


async def test_one_prepare_at_a_time_and_bad_ones_are_refused_by_their_id(
    term: TermClient,
) -> None:
    """Each refusal carries the refused prepare's `id`: a client tells it from its run's errors."""
    await term.send(type="prepare", language="c", code=STAMPED, id="p1")
    await term.send(type="prepare", language="c", code=STAMPED.replace("at", "on"), id="p2")
    refused = await term.next_message("error")
    assert (refused["code"], refused["id"]) == ("already_running", "p2"), refused
    assert (await term.next_message("prepared", timeout=60))["id"] == "p1"
    await term.send(type="prepare", language="cobol", code="x", id=3)
    refused = await term.next_message("error")
    assert (refused["code"], refused["id"]) == ("unknown_language", 3), refused
    twice = [{"name": "main.c", "content": STAMPED}] * 2  # refused as the message is read
    await term.send(type="prepare", language="c", files=twice, id="p4")
    refused = await term.next_message("error")
    assert (refused["code"], refused["id"]) == ("bad_message", "p4"), refused
    await term.send(type="prepare", language="c", code=STAMPED)
    assert "id" not in await term.next_message("prepared", timeout=60)


async def test_a_prepare_never_takes_a_slot_a_run_needs(make_client: MakeClient) -> None:
    client = await make_client(capacity={"max_runs": 2})
    async with TermClient.connect(client) as running, TermClient.connect(client) as typing:
        assert (await running.run("bash", "sleep 30"))["type"] == "started"
        await typing.send(type="prepare", language="c", code=STAMPED)
        prepared = await typing.next_message("prepared", "error")
        assert prepared["outcome"] == "skipped", prepared
        assert prepared["message"] == "the server is busy; the run will compile when it starts"
        await running.send(type="kill")
        await running.wait_exit()


async def test_with_prepare_off_nothing_is_compiled_ahead(make_client: MakeClient) -> None:
    client = await make_client(compile_cache={"prepare": False})
    async with TermClient.connect(client) as term:
        await term.send(type="prepare", language="c", code=STAMPED)
        prepared = await term.next_message("prepared", "error")
        assert prepared["message"] == "this server does not compile ahead", prepared


async def test_a_client_gone_during_its_prepare_leaves_nothing(
    client: TestClient[Any, Any],
) -> None:
    """The suite's own check after each test finds no container and no folder."""
    async with TermClient.connect(client) as term:
        await term.send(
            type="prepare", language="cpp", code="#include <bits/stdc++.h>\nint main(){}"
        )
        await asyncio.sleep(0.2)  # the compile is under way
