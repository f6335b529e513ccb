"""Live rooms over real WebSockets: a presenter, its viewers, read-only, resume, limits."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ce_ws.runs.fanout import TERMINAL_RESET
from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient

ASK = 'name = input("name? ")\nprint(f"hello {name}!")\n'
#: Prints a screen, then waits for a line: a run that stays live until answered.
SCREEN_THEN_WAIT = 'print("screen-one")\nprint("screen-two")\ninput()\nprint("answered")\n'


@contextlib.asynccontextmanager
async def viewers(client: TestClient[Any, Any], count: int) -> AsyncIterator[list[TermClient]]:
    """`count` connected sockets (hello read), closed at the end."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(TermClient.connect(client)) for _ in range(count)]


async def share(presenter: TermClient) -> dict[str, Any]:
    await presenter.send(type="share")
    shared = await presenter.next_message("shared", "error")
    assert shared["type"] == "shared", shared
    return shared


async def watch(viewer: TermClient, room: str) -> dict[str, Any]:
    await viewer.send(type="watch", room=room)
    return await viewer.next_message("watching", "error")


async def test_presenter_and_three_viewers_see_code_run_prompt_and_answer(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    assert len(shared["room"]) >= 22 and shared["key"] != shared["room"]
    assert shared["watch_url"].endswith(f"/watch/{shared['room']}")
    assert shared["watch_url"].startswith("http://")
    async with viewers(client, 3) as watching:
        for viewer in watching:
            joined = await watch(viewer, shared["room"])
            assert joined["type"] == "watching" and joined["run"] is None, joined
        await term.next_message("viewers")
        while term.messages[-1] != {"type": "viewers", "count": 3}:
            await term.next_message("viewers")
        await term.send(type="code", language="python", code=ASK)
        for viewer in watching:
            code = await viewer.next_message("code")
            assert code == {"type": "code", "language": "python", "code": ASK}
        started = await term.run("python", ASK)
        await term.expect(b"name? ")
        await term.keys("Ada\r")
        await term.expect(b"hello Ada!")
        presenter_exit = await term.wait_exit()
        for viewer in watching:
            assert (await viewer.next_message("started")) == started
            await viewer.expect(b"hello Ada!")
            assert b"name? Ada" in viewer.output  # the prompt and the echoed answer
            assert (await viewer.next_message("exit")) == presenter_exit


async def test_late_joiner_gets_the_current_run_and_a_replay_of_the_screen(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    await term.send(type="code", language="python", code=SCREEN_THEN_WAIT)
    started = await term.run("python", SCREEN_THEN_WAIT, tty={"cols": 100, "rows": 30})
    await term.expect(b"screen-two")
    async with viewers(client, 1) as (late,):
        joined = await watch(late, shared["room"])
        assert joined["run"] == started
        assert joined["code"] == SCREEN_THEN_WAIT and joined["language"] == "python"
        assert (joined["cols"], joined["rows"]) == (100, 30)
        await late.expect(b"screen-two")
        assert late.output.startswith(TERMINAL_RESET)
        assert b"screen-one" in late.output
        await term.keys("\r")
        await late.expect(b"answered")
        assert (await late.next_message("exit"))["status"] == "exited"


async def test_presenter_resize_is_forwarded_to_viewers(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    async with viewers(client, 1) as (viewer,):
        await watch(viewer, shared["room"])
        await term.run("python", SCREEN_THEN_WAIT)
        await term.expect(b"screen-two")
        await term.send(type="resize", cols=120, rows=40)
        assert (await viewer.next_message("resize")) == {
            "type": "resize",
            "cols": 120,
            "rows": 40,
        }
        await term.send(type="kill")
        assert (await viewer.next_message("exit"))["status"] == "killed"


async def test_a_viewer_may_not_run_type_or_signal_until_it_unwatches(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    await term.run("python", SCREEN_THEN_WAIT)
    await term.expect(b"screen-two")
    async with viewers(client, 1) as (viewer,):
        await watch(viewer, shared["room"])
        attempts: list[dict[str, Any]] = [
            {"type": "run", "language": "python", "code": "print(1)"},
            {"type": "stdin", "data": "typed\n"},
            {"type": "signal", "signal": "SIGINT"},
            {"type": "resize", "cols": 10, "rows": 5},
            {"type": "kill"},
            {"type": "eof"},
        ]
        for attempt in attempts:
            await viewer.send(**attempt)
            refusal = await viewer.next_message("error")
            assert refusal["code"] == "read_only", (attempt, refusal)
        await viewer.keys("typed\r")
        assert (await viewer.next_message("error"))["code"] == "read_only"
        # The presenter's run never got any of it.
        await term.drain(0.3)
        assert b"typed" not in term.output and not any(m["type"] == "exit" for m in term.messages)
        await viewer.send(type="unwatch")
        own = await viewer.run_to_exit("python", "print('own run')")
        assert own["status"] == "exited" and b"own run" in viewer.output
    await term.send(type="kill")
    await term.wait_exit()


async def test_unknown_room_is_refused(term: TermClient) -> None:
    refusal = await watch(term, "no-such-room-0123456789")
    assert refusal["type"] == "error" and refusal["code"] == "unknown_room"
    await term.send(type="code", language="python", code="x")
    assert (await term.next_message("error"))["code"] == "unknown_room"
    await term.send(type="share", room="no-such-room-0123456789", key="wrong-key-0123456789")
    assert (await term.next_message("error"))["code"] == "unknown_room"


async def test_presenter_takes_the_room_back_with_its_key_and_viewers_keep_watching(
    make_client: MakeClient,
) -> None:
    client = await make_client(sharing={"resume_s": 30})
    async with viewers(client, 1) as (viewer,):
        async with TermClient.connect(client) as presenter:
            shared = await share(presenter)
            await watch(viewer, shared["room"])
        assert (await viewer.next_message("presenter")) == {"type": "presenter", "online": False}
        async with TermClient.connect(client) as back:
            await back.send(type="share", room=shared["room"], key=shared["key"])
            again = await back.next_message("shared")
            assert again["room"] == shared["room"] and again["key"] == shared["key"]
            assert (await viewer.next_message("presenter"))["online"] is True
            await back.run_to_exit("python", "print('after the resume')")
            await viewer.expect(b"after the resume")
            assert (await viewer.next_message("exit"))["status"] == "exited"


async def test_room_closes_when_the_presenter_stays_away_past_the_window(
    make_client: MakeClient,
) -> None:
    client = await make_client(sharing={"resume_s": 1})
    async with viewers(client, 2) as (viewer, other):
        async with TermClient.connect(client) as presenter:
            shared = await share(presenter)
            await watch(viewer, shared["room"])
            await presenter.run("python", SCREEN_THEN_WAIT)
            await viewer.expect(b"screen-two")
        # The presenter's run ended with it; viewers are told, then the room closes.
        gone = await viewer.next_message("exit")
        assert gone["status"] == "killed"
        closed = await viewer.next_message("room_closed", timeout=5)
        assert closed == {"type": "room_closed", "reason": "presenter_left"}
        assert (await watch(other, shared["room"]))["code"] == "unknown_room"
        # No longer watching: the viewer runs its own program.
        assert (await viewer.run_to_exit("python", "print(2)"))["status"] == "exited"


async def test_unshare_closes_the_room_for_its_viewers(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    async with viewers(client, 1) as (viewer,):
        await watch(viewer, shared["room"])
        await term.send(type="unshare")
        assert (await viewer.next_message("room_closed"))["reason"] == "unshared"
        assert (await term.next_message("room_closed"))["reason"] == "unshared"


async def test_room_survives_several_runs_in_a_row(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    async with viewers(client, 1) as (viewer,):
        await watch(viewer, shared["room"])
        for index in range(3):
            exit_message = await term.run_to_exit("python", f"print('run number {index}')")
            assert (await viewer.next_message("exit")) == exit_message
            await viewer.expect(f"run number {index}".encode())
        assert viewer.types().count("started") == 3


@pytest.mark.parametrize(
    ("sharing", "second", "code"),
    [
        ({"max_viewers": 1}, "watch", "busy"),
        ({"rooms_per_client": 1}, "share", "rate_limited"),
        ({"max_rooms": 1, "rooms_per_client": 5}, "share", "busy"),
    ],
)
async def test_room_limits_are_refused_with_their_codes(
    make_client: MakeClient, sharing: dict[str, int], second: str, code: str
) -> None:
    client = await make_client(sharing=sharing)
    async with viewers(client, 3) as (presenter, first, extra):
        shared = await share(presenter)
        assert (await watch(first, shared["room"]))["type"] == "watching"
        if second == "watch":
            refusal = await watch(extra, shared["room"])
        else:
            await extra.send(type="share")
            refusal = await extra.next_message("shared", "error")
        assert refusal["type"] == "error" and refusal["code"] == code, refusal
        assert refusal["message"]


async def test_the_room_key_never_reaches_a_viewer(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    shared = await share(term)
    async with viewers(client, 1) as (viewer,):
        await watch(viewer, shared["room"])
        await term.send(type="code", language="python", code="print('k')")
        await term.run_to_exit("python", "print('k')")
        await viewer.next_message("exit")
        assert shared["key"] not in json.dumps(viewer.messages)
        assert shared["key"].encode() not in viewer.output


async def test_code_over_the_size_cap_is_refused(make_client: MakeClient) -> None:
    client = await make_client(max_code_bytes=1024)
    async with TermClient.connect(client) as presenter:
        await share(presenter)
        await presenter.send(type="code", language="python", code="x" * 2000)
        refusal = await presenter.next_message("error")
        assert refusal["code"] == "code_too_large" and refusal["field"] == "code"
