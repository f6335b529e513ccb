"""Recordings: asciicast v2 files of exactly the presenter's bytes, served safely, expiring."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient

#: Colour, a multibyte character printed in two halves, a wait for input with echo off.
PROGRAM = r"""
import getpass, os, sys
sys.stdout.write("\x1b[31mred\x1b[0m caf")
sys.stdout.flush()
os.write(1, "é".encode()[:1])
os.write(1, "é".encode()[1:] + b" done\r\n")
secret = getpass.getpass("secret? ")
print(f"got {len(secret)} chars")
"""


def parse_cast(text: str) -> tuple[dict[str, Any], list[list[Any]]]:
    """An asciicast v2 file: the header line, then one JSON array per event."""
    lines = text.splitlines()
    header = json.loads(lines[0])
    events = [json.loads(line) for line in lines[1:]]
    return header, events


async def fetch_cast(client: TestClient[Any, Any], url: str) -> str:
    response = await client.get(url)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/x-asciicast"
    return await response.text()


async def test_recording_is_asciicast_v2_with_exactly_the_presenters_bytes_and_no_input(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    started = await term.run("python", PROGRAM, record=True, tty={"cols": 90, "rows": 20})
    assert started["type"] == "started"
    await term.expect(b"secret? ")
    await term.send(type="resize", cols=120, rows=40)
    await term.keys("hunter2\r")
    exit_message = await term.wait_exit()
    assert exit_message["status"] == "exited"
    url = exit_message["recording"]
    assert url.startswith("/api/v1/recordings/") and url.endswith(".cast")
    header, events = parse_cast(await fetch_cast(client, url))
    assert header["version"] == 2
    assert (header["width"], header["height"]) == (90, 20)
    assert abs(header["timestamp"] - time.time()) < 120
    assert "python" in header["title"]
    assert {kind for _, kind, _ in events} <= {"o", "r"}
    assert [data for _, kind, data in events if kind == "r"] == ["120x40"]
    times = [event[0] for event in events]
    assert times == sorted(times)
    played = "".join(data for _, kind, data in events if kind == "o").encode()
    assert played == bytes(term.output)
    assert "café done".encode() in played and b"\x1b[31mred" in played
    assert b"hunter2" not in played  # the input is never recorded


async def test_runs_in_a_room_are_recorded_unless_the_presenter_says_no(
    client: TestClient[Any, Any], term: TermClient
) -> None:
    await term.send(type="share")
    await term.next_message("shared")
    recorded = await term.run_to_exit("python", "print('in the room')")
    assert recorded["recording"].endswith(".cast")
    unrecorded = await term.run_to_exit("python", "print('off the record')", record=False)
    assert "recording" not in unrecorded
    async with TermClient.connect(client) as plain:
        assert "recording" not in await plain.run_to_exit("python", "print(1)")


async def test_only_recordings_by_their_exact_name_are_served(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(recordings={"dir": str(tmp_path)})
    async with TermClient.connect(client) as term:
        url = (await term.run_to_exit("bash", "echo recorded", record=True))["recording"]
    name = url.rsplit("/", 1)[1]
    (tmp_path / "notes.txt").write_text("private")
    (tmp_path / ("0" * 32 + ".cast")).symlink_to("/etc/passwd")
    (tmp_path / ("1" * 32 + ".cast.part")).write_text("unfinished")
    for path in [
        "/api/v1/recordings/notes.txt",
        "/api/v1/recordings/..%2f..%2f..%2fetc%2fpasswd",
        "/api/v1/recordings/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/recordings/" + "0" * 32 + ".cast",
        "/api/v1/recordings/" + "1" * 32 + ".cast.part",
        "/api/v1/recordings/" + name.upper(),
        "/api/v1/recordings/" + name + "/",
    ]:
        response = await client.get(path)
        assert response.status == 404, path
        assert "root:" not in await response.text()
    assert "recorded" in await fetch_cast(client, url)


async def test_recordings_expire_by_size_oldest_first(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client = await make_client(recordings={"dir": str(tmp_path), "max_bytes": 64 * 1024})
    urls = []
    async with TermClient.connect(client) as term:
        for index in range(3):
            program = f"print('{index}' * 25000)"
            urls.append((await term.run_to_exit("python", program, record=True))["recording"])
            await asyncio.sleep(0.05)  # distinct modification times
    statuses = [(await client.get(url)).status for url in urls]
    assert statuses == [404, 200, 200]
    assert sum(path.stat().st_size for path in tmp_path.glob("*.cast")) <= 64 * 1024


async def test_recordings_expire_by_age(make_client: MakeClient, tmp_path: Path) -> None:
    client = await make_client(recordings={"dir": str(tmp_path), "max_age_s": 1})
    async with TermClient.connect(client) as term:
        url = (await term.run_to_exit("bash", "echo soon gone", record=True))["recording"]
    assert (await client.get(url)).status == 200
    await asyncio.sleep(1.6)
    assert (await client.get(url)).status == 404
    assert list(tmp_path.glob("*.cast")) == []
