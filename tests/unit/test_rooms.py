"""A room's logic with recording fakes: greeting and replay, resync, limits, the state machine."""

from __future__ import annotations

import asyncio

import pytest

from ce_ws.config import SharingSettings
from ce_ws.errors import Busy, RateLimited, UnknownRoom
from ce_ws.protocol import (
    CodeMessage,
    Exit,
    RoomClosed,
    Started,
    Status,
    Watching,
)
from ce_ws.rooms.registry import RoomRegistry
from ce_ws.rooms.room import RoomState
from ce_ws.runs.fanout import TERMINAL_RESET
from ce_ws.types import STDOUT
from tests.helpers import eventually
from tests.unit.sinks import Sink

STARTED = Started(run_id="r1", language="python", version="3", limits={})
EXIT = Exit(
    run_id="r1", stage="run", status=Status.EXITED, exit_code=0, signal=None,
    wall_ms=1, output_bytes=3, truncated=False,
)  # fmt: skip


class Presenter(Sink):
    lost = 0

    def room_lost(self) -> None:
        self.lost += 1


class Watcher:
    def __init__(self) -> None:
        self.left: list[str | None] = []

    def room_left(self, dropped: str | None) -> None:
        self.left.append(dropped)


def registry(**settings: object) -> RoomRegistry:
    return RoomRegistry(SharingSettings(**settings))  # type: ignore[arg-type]


async def test_a_late_viewer_gets_watching_then_the_replay_of_the_live_run() -> None:
    rooms = registry()
    room = await rooms.open(client_key="a", presenter=Presenter())
    room.set_code(CodeMessage(type="code", language="python", code="print(1)"))
    room.message(STARTED)
    room.output(b"old screen\r\n", STDOUT)
    sink = Sink()
    room.watch(sink, Watcher())
    await eventually(lambda: bytes(sink.output) == TERMINAL_RESET + b"old screen\r\n")
    watching = sink.messages[0]
    assert isinstance(watching, Watching)
    assert watching.run == STARTED and watching.code == "print(1)" and watching.viewers == 1
    await room.close("unshared")


async def test_between_runs_there_is_no_replay() -> None:
    rooms = registry()
    room = await rooms.open(client_key="a", presenter=Presenter())
    room.message(STARTED)
    room.output(b"done\r\n", STDOUT)
    room.message(EXIT)
    sink = Sink()
    room.watch(sink, Watcher())
    await eventually(lambda: bool(sink.messages))
    await asyncio.sleep(0.01)
    assert sink.output == b"" and sink.messages[0].run is None  # type: ignore[attr-defined]
    await room.close("unshared")


async def test_a_stalled_viewer_is_dropped_and_its_connection_told() -> None:
    rooms = registry(viewer_queue_bytes=4096, replay_bytes=1024, viewer_stall_s=0.05)
    room = await rooms.open(client_key="a", presenter=Presenter())
    room.message(STARTED)
    stalled, watcher = Sink(), Watcher()
    stalled.gate.clear()
    room.watch(stalled, watcher)
    for _ in range(20):
        room.output(b"z" * 1000, STDOUT)
    await eventually(lambda: bool(watcher.left))
    assert watcher.left[0] is not None and "took nothing" in watcher.left[0]
    assert room.viewers == 0
    await room.close("unshared")


async def test_limits_refuse_with_their_codes() -> None:
    rooms = registry(max_rooms=2, rooms_per_client=1, max_viewers=1)
    room = await rooms.open(client_key="a", presenter=Presenter())
    with pytest.raises(RateLimited):
        await rooms.open(client_key="a", presenter=Presenter())
    other = await rooms.open(client_key="b", presenter=Presenter())
    with pytest.raises(Busy):
        await rooms.open(client_key="c", presenter=Presenter())
    room.watch(Sink(), Watcher())
    with pytest.raises(Busy):
        room.watch(Sink(), Watcher())
    await rooms.aclose()
    assert room.state is other.state is RoomState.CLOSED and len(rooms) == 0


async def test_take_back_needs_the_key_and_the_window() -> None:
    rooms = registry(resume_s=0.05)
    first = Presenter()
    room = await rooms.open(client_key="a", presenter=first)
    with pytest.raises(UnknownRoom):
        await rooms.take_back(room.room_id, "not-the-key", Presenter())
    room.presenter_left(first)
    assert room.state is RoomState.WAITING
    assert await rooms.take_back(room.room_id, room.key, Presenter()) is room
    assert room.state is RoomState.LIVE
    second = Presenter()
    await rooms.take_back(room.room_id, room.key, second)
    room.presenter_left(second)
    watcher = Watcher()
    room.watch(Sink(), watcher)
    await eventually(lambda: room.state is RoomState.CLOSED)
    assert watcher.left == [None]
    with pytest.raises(UnknownRoom):
        rooms.find(room.room_id)


async def test_close_tells_viewers_and_presenter() -> None:
    rooms = registry()
    presenter, sink = Presenter(), Sink()
    room = await rooms.open(client_key="a", presenter=presenter)
    room.watch(sink, Watcher())
    await room.close("expired")
    assert RoomClosed(reason="expired") in sink.messages
    assert RoomClosed(reason="expired") in presenter.messages and presenter.lost == 1
