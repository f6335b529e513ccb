"""A viewer that never reads: the presenter's program keeps its pace, the viewer is dropped
1013 within its bound, the other viewers go on, and the server's memory stays flat."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tests.integration.server_process import ServerProcess, server_process
from tests.integration.stalled_socket import StalledSocket
from tests.integration.terminal import TermClient

MIB = 1024 * 1024
FLOOD_MIB = 16
#: Writes FLOOD_MIB MiB as fast as the terminal takes it, then ends.
FLOOD = f"import os\nline = b'x' * 1023 + b'\\n'\nfor _ in range({FLOOD_MIB} * 1024):\n    os.write(1, line)\n"


async def timed_flood(presenter: TermClient) -> tuple[float, int]:
    """Run the flood on the presenter, reading (and discarding) all of it: seconds, bytes."""
    await presenter.send(type="run", language="python", code=FLOOD, limits=_LIMITS)
    received = 0
    start = 0.0
    while True:
        frame = await presenter.ws.receive(timeout=60)
        if frame.type is aiohttp.WSMsgType.BINARY:
            received += len(frame.data)
        elif frame.type is aiohttp.WSMsgType.TEXT:
            message = json.loads(frame.data)
            if message["type"] == "started":
                start = time.monotonic()
            elif message["type"] == "exit":
                assert message["status"] == "exited", message
                return time.monotonic() - start, received
        else:
            raise AssertionError(f"presenter socket ended: {frame.type}")


_LIMITS = {"output_bytes": 64 * MIB, "wall_ms": 60_000}
#: Floods alone and watched, in turns.
_TURNS = 3


async def rate(presenter: TermClient) -> float:
    """Bytes a second the presenter got from one flood."""
    seconds, received = await timed_flood(presenter)
    assert received >= FLOOD_MIB * MIB
    return received / seconds


async def sample_rss(server: ServerProcess, samples: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append(server.rss_bytes())
        await asyncio.sleep(0.1)


async def test_a_viewer_that_never_reads_slows_no_one_and_is_dropped_1013() -> None:
    with server_process(
        CE_MAXIMA__OUTPUT_BYTES=str(64 * MIB),
        CE_SHARING__VIEWER_STALL_S="2",
        CE_POOL__ENABLED="false",
    ) as server:
        async with (
            TermClient.connect_url(server.ws_url, max_msg_size=0) as presenter,
            TermClient.connect_url(server.ws_url, max_msg_size=0) as reader,
        ):
            stalled_viewers = [await StalledSocket.connect(server.port) for _ in range(_TURNS)]
            await presenter.send(type="share")
            room = (await presenter.next_message("shared"))["room"]
            baseline = server.rss_bytes()
            samples: list[int] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_rss(server, samples, stop))
            # Alone and watched in turns, so the shared host's load falls on both.
            alone, watched = [], []
            for stalled in stalled_viewers:
                alone.append(await rate(presenter))
                stalled.send(type="watch", room=room)
                watched.append(await rate(presenter))  # the viewer reads nothing
            # Another viewer, reading, joins: the stalled ones never held it back either.
            await reader.send(type="watch", room=room)
            await reader.next_message("watching")
            reading = asyncio.create_task(reader.next_message("exit", timeout=60))
            await timed_flood(presenter)
            await asyncio.sleep(2.5)  # past the stall bound
            stop.set()
            await sampler

            growth = max(samples) - baseline
            summary = (
                f"MiB/s alone {[round(r / MIB, 1) for r in alone]},"
                f" watched {[round(r / MIB, 1) for r in watched]}; server +{growth / MIB:.1f} MiB"
            )
            print(summary)
            # A viewer that held the program back would stop it outright (it never
            # reads); the margin is for the shared host's noise (bench fanout measures).
            assert max(watched) >= 0.5 * max(alone), summary
            assert growth < 32 * MIB, summary
            for stalled in stalled_viewers:
                assert await stalled.close_code(timeout_s=30) == 1013
                stalled.close()
            # The reading viewer (slower than the flood: resynced as it fell behind)
            # saw the run's last screen and its end, and still watches.
            exit_message = await reading
            assert exit_message["status"] == "exited"
            assert reader.output.endswith(b"x" * 1023 + b"\r\n") and not reader.ws.closed
            await presenter.send(type="ping")
            await presenter.next_message("pong")
