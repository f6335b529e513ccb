"""The tee: taps see what the owner sees, first; the exit carries the recording, once."""

from __future__ import annotations

from ce_ws.protocol import Exit, ServerMessage, Stage, Status
from ce_ws.runs.tee import Tee
from ce_ws.types import STDOUT, StreamId

EXIT = Exit(
    run_id="r", stage="run", status=Status.EXITED, exit_code=0, signal=None,
    wall_ms=1, output_bytes=0, truncated=False,
)  # fmt: skip


class Owner:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.messages: list[ServerMessage] = []

    async def send(self, message: ServerMessage) -> None:
        self.log.append(f"owner {message.type}")  # type: ignore[attr-defined]
        self.messages.append(message)

    async def send_output(self, data: bytes, stream: StreamId) -> None:
        self.log.append(f"owner {data.decode()}")


class RecordingTap:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.messages: list[ServerMessage] = []

    def message(self, message: ServerMessage) -> None:
        self.log.append(f"tap {message.type}")  # type: ignore[attr-defined]
        self.messages.append(message)

    def output(self, data: bytes, stream: StreamId) -> None:
        self.log.append(f"tap {data.decode()}")

    def resize(self, cols: int, rows: int) -> None:
        self.log.append(f"tap {cols}x{rows}")

    def ended(self) -> None:
        self.log.append("tap ended")


async def test_taps_are_told_before_the_owner_in_its_order() -> None:
    log: list[str] = []
    tee = Tee(Owner(log), [RecordingTap(log)], recording=None)
    tee.resize(90, 20)
    await tee.send(Stage(stage="run"))
    await tee.send_output(b"hi", STDOUT)
    assert log == ["tap 90x20", "tap stage", "owner stage", "tap hi", "owner hi"]


async def test_exit_carries_the_recording_and_reaches_taps_once() -> None:
    log: list[str] = []
    owner, tap = Owner(log), RecordingTap(log)
    tee = Tee(owner, [tap], recording="/api/v1/recordings/x.cast")
    await tee.send(EXIT)
    tee.ended(EXIT)
    assert [m.recording for m in owner.messages] == ["/api/v1/recordings/x.cast"]  # type: ignore[attr-defined]
    assert log.count("tap exit") == 1 and log[-1] == "tap ended"


async def test_taps_get_the_exit_the_owner_missed() -> None:
    log: list[str] = []
    tee = Tee(Owner(log), [RecordingTap(log)], recording=None)
    tee.ended(EXIT)  # the owner left: the run's exit was decided, never sent
    assert log == ["tap exit", "tap ended"]
