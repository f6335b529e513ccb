"""A closed WebSocket's connection is freed at once, not by a later garbage-collector pass.

Each connection used to hand its own bound `_send` to its `Sharing`, which it
keeps: a reference cycle. Every closed connection (its socket, request,
handler, run handle, and through them the run's box and buffers) then waited
for the collector's next full pass, which comes rarely on a busy server: the
soak's RSS grew about 16 KiB a run. With the collector off, what a
connection leaves is what reference counting alone frees, so any cycle
through a `Connection` shows here as a survivor.
"""

from __future__ import annotations

import gc
from typing import Any

from aiohttp.test_utils import TestClient

from ce_ws.api.appkeys import CONNECTIONS
from ce_ws.api.connection import Connection
from tests.helpers import eventually
from tests.integration.terminal import TermClient

CONNECTIONS_OPENED = 6


def _live_connections() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, Connection))


async def test_closed_connections_leave_no_reference_cycle(client: TestClient[Any, Any]) -> None:
    gc.collect()
    assert _live_connections() == 0
    gc.disable()
    try:
        for number in range(CONNECTIONS_OPENED):
            async with TermClient.connect(client) as term:
                if number % 2:  # with a run, and without one (hello only)
                    ended = await term.run_to_exit("python", 'print("hi")\n')
                    assert ended["status"] == "exited", ended
                else:
                    await term.send(type="ping")
                    await term.next_message("pong")
        sockets = client.server.app[CONNECTIONS]
        await eventually(lambda: not sockets, what="every connection's handler returned")
        survivors = _live_connections()
    finally:
        gc.enable()
    assert survivors == 0, (
        f"{survivors} of {CONNECTIONS_OPENED} closed connections are kept alive by a "
        "reference cycle (freed only by a full garbage collection)"
    )
