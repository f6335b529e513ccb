"""The viewers of the fanout benchmark, in a process of their own.

`python -m bench.fanout_viewers WS_URL ROOM COUNT`: opens COUNT sockets that
watch ROOM, one of which never reads, prints `ready`, then records when each
reading viewer first sees each probe token (`<n>`) on the system-wide
monotonic clock (`time.perf_counter`, comparable with the presenter's
process). On a line on stdin it prints one JSON line of what it saw and
exits. Apart, so reading hundreds of sockets never delays the presenter's
own measurements in the benchmark's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time

import aiohttp

from bench.client import http_client

_TOKEN = re.compile(rb"<(\d+)>")
_JOIN_CONCURRENCY = 8


class Watcher:
    """One reading viewer: first arrival of each token, bytes seen, whether it was closed."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.arrivals: dict[int, float] = {}
        self.bytes = 0
        self.close_code: int | None = None
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for frame in self.ws:
            if frame.type is aiohttp.WSMsgType.BINARY:
                now = time.perf_counter()
                self.bytes += len(frame.data)
                for match in _TOKEN.finditer(frame.data):
                    self.arrivals.setdefault(int(match.group(1)), now)
        self.close_code = self.ws.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _watch(
    http: aiohttp.ClientSession, url: str, room: str
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url, max_msg_size=0)
    await ws.receive()  # hello
    await ws.send_str(json.dumps({"type": "watch", "room": room}))
    return ws


async def main(url: str, room: str, count: int) -> None:
    """Watch, report ready, record until told to stop, report."""
    async with http_client() as http:
        stalled = await _watch(http, url, room)  # never read from here on
        gate = asyncio.Semaphore(_JOIN_CONCURRENCY)

        async def join() -> Watcher:
            async with gate:
                return Watcher(await _watch(http, url, room))

        watchers = await asyncio.gather(*(join() for _ in range(count - 1)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        report = {
            "arrivals": [{str(k): v for k, v in w.arrivals.items()} for w in watchers],
            "bytes": [w.bytes for w in watchers],
            "closed": sum(w.ws.closed for w in watchers),
            "stalled_close_code": await _close_code(stalled),
        }
        await asyncio.gather(*(w.close() for w in watchers))
        await stalled.close()
        print(json.dumps(report), flush=True)


async def _close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read what the stalled socket holds: the server closed it 1013, or not (None)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(15):
            async for _ in ws:
                pass
    return ws.close_code


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
