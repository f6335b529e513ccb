"""Recorder and store: asciicast v2 lines, split characters kept whole, the budget."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ce_ws.config import RecordingsSettings
from ce_ws.protocol import Exit, Started, Status
from ce_ws.recordings.store import RecordingStore
from ce_ws.types import STDOUT

STARTED = Started(run_id="r1", language="python", version="3.11", limits={})
EXIT = Exit(
    run_id="r1", stage="run", status=Status.EXITED, exit_code=0, signal=None,
    wall_ms=1, output_bytes=3, truncated=False,
)  # fmt: skip


def store(tmp_path: Path, **settings: object) -> RecordingStore:
    recordings = RecordingStore(RecordingsSettings(dir=str(tmp_path), **settings))  # type: ignore[arg-type]
    recordings.open()
    return recordings


def test_a_recording_is_header_then_events_and_keeps_split_characters_whole(
    tmp_path: Path,
) -> None:
    recordings = store(tmp_path)
    recorder, url = recordings.recorder()
    recorder.resize(100, 30)
    recorder.message(STARTED)
    recorder.output("é".encode()[:1], STDOUT)
    recorder.output("é".encode()[1:] + b"\r\n", STDOUT)
    recorder.resize(120, 40)
    recorder.message(EXIT)
    path = recordings.find(url.rsplit("/", 1)[1])
    assert path is not None
    header, *events = [json.loads(line) for line in path.read_text().splitlines()]
    assert header["version"] == 2 and (header["width"], header["height"]) == (100, 30)
    assert header["title"] == "python 3.11"
    assert [kind for _, kind, _ in events] == ["o", "r"]
    assert events[0][2] == "é\r\n" and events[1][2] == "120x40"


def test_a_run_that_never_started_leaves_nothing(tmp_path: Path) -> None:
    recordings = store(tmp_path)
    recorder, _ = recordings.recorder()
    recorder.ended()
    assert list(tmp_path.iterdir()) == []


def test_unfinished_recordings_are_not_found_and_leftovers_go_at_startup(
    tmp_path: Path,
) -> None:
    recordings = store(tmp_path)
    recorder, url = recordings.recorder()
    recorder.message(STARTED)
    recorder.output(b"partial", STDOUT)
    assert recordings.find(url.rsplit("/", 1)[1]) is None
    store(tmp_path)  # a restart: the unfinished one was a crash's leftover
    assert list(tmp_path.iterdir()) == []
    recorder.ended()  # the recorder finds its file gone: nothing comes back
    assert list(tmp_path.iterdir()) == []


def test_the_oldest_go_first_over_the_budget(tmp_path: Path) -> None:
    recordings = store(tmp_path, max_bytes=64 * 1024)
    names = []
    for index in range(3):
        path = tmp_path / f"{index:032x}.cast"
        path.write_bytes(b"x" * 30_000)
        os.utime(path, (time.time() - 100 + index, time.time() - 100 + index))
        names.append(path.name)
    recordings.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == names[1:]
