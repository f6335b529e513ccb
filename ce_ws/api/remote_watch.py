"""Watching a room held by another replica: that replica's viewer socket, relayed.

A viewer who reaches replica B for a room held on replica A is served by
A's own viewer machinery: B opens one WebSocket to A (as a viewer, with the
viewer's address in `X-Forwarded-For`; A trusts B as a proxy), sends
`watch`, and copies every frame A sends to the viewer's socket, in order.
So a late joiner gets A's `watching` and replay, the viewer count and
`CE_SHARING__MAX_VIEWERS` are A's, and a slow viewer is handled exactly as
on one node: B reads from A only as fast as the viewer takes it, so A sees
a slow viewer, resyncs it or drops it (1013, passed on), and neither the
program nor the other viewers wait. B holds no queue of its own beyond the
sockets' buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

import aiohttp
from aiohttp import hdrs, web

from ce_ws.api.peers import CONNECT_S, FORWARDED_HEADER, Peers
from ce_ws.api.socket_delivery import tcp_delivery
from ce_ws.errors import Busy, CeError, RateLimited, UnknownRoom
from ce_ws.protocol import SUBPROTOCOL, CloseCode, RoomClosed

log = logging.getLogger(__name__)

#: What the viewer is told when the replica holding the room stops answering.
GONE = "server_shutdown"
_REFUSALS: dict[str, type[CeError]] = {cls.code: cls for cls in (UnknownRoom, Busy, RateLimited)}


class RemoteWatch:
    """One viewer's relay from the replica holding the room; ends with the room or the viewer."""

    def __init__(
        self,
        upstream: aiohttp.ClientWebSocketResponse,
        viewer: web.WebSocketResponse,
        *,
        stall_s: float,
        on_end: Callable[[str | None], None],
    ) -> None:
        """`on_end` is told once: None when the room ended, why when the viewer was dropped."""
        self._upstream = upstream
        self._viewer = viewer
        self._stall_s = stall_s
        self._on_end = on_end
        self._ended = False
        self._sending = False
        self._relay = asyncio.create_task(self._copy())
        self._guard = asyncio.create_task(self._drop_when_stalled())

    async def close(self) -> None:
        """The viewer stops watching (unwatch, or its socket closed); idempotent."""
        for task in (self._guard, self._relay):
            task.cancel()
        await asyncio.gather(self._guard, self._relay, return_exceptions=True)

    async def _copy(self) -> None:
        ended_by_room = False
        try:
            async for frame in self._upstream:
                if frame.type is aiohttp.WSMsgType.BINARY:
                    await self._deliver(frame.data)
                elif frame.type is aiohttp.WSMsgType.TEXT:
                    if '"room_closed"' in frame.data and _type(frame.data) == "room_closed":
                        ended_by_room = True
                        self._end(None)  # before the viewer reads it, as with a room here
                        await self._deliver(frame.data)
                        break
                    await self._deliver(frame.data)
            if self._upstream.close_code == CloseCode.TRY_AGAIN_LATER:
                # The room's replica dropped this viewer as too slow: it is told as on one node.
                self._end("fell behind the room on the replica holding it")
            elif not ended_by_room:
                log.info("the replica holding the watched room stopped answering")
                self._end(None)
                await self._deliver(RoomClosed(reason=GONE).to_json())
        except ConnectionError:
            pass  # the viewer's socket closed: nothing to tell it
        finally:
            self._end(None)
            self._guard.cancel()
            await self._upstream.close()

    def _end(self, dropped: str | None) -> None:
        if not self._ended:
            self._ended = True
            self._on_end(dropped)

    async def _deliver(self, frame: str | bytes) -> None:
        self._sending = True
        try:
            if isinstance(frame, bytes):
                await self._viewer.send_bytes(frame)
            else:
                await self._viewer.send_str(frame)
        finally:
            self._sending = False

    async def _drop_when_stalled(self) -> None:
        """Drop the viewer (1013) once its reader took nothing waiting for it for `stall_s`.

        Its frames wait in socket buffers, not in a send: the kernel says
        whether it still takes them, as for a viewer of a room here.
        """
        taken, progressed_at = -1, time.monotonic()
        while True:
            await asyncio.sleep(self._stall_s / 4)
            delivery = tcp_delivery(self._viewer.get_extra_info("socket"))
            now = time.monotonic()
            if delivery.taken != taken or not (delivery.waiting or self._sending):
                taken, progressed_at = delivery.taken, now
            elif now - progressed_at > self._stall_s:
                break
        self._end(f"took nothing of its frames for over {self._stall_s:g} s")
        self._relay.cancel()


def _type(text: str) -> object:
    with contextlib.suppress(ValueError):
        message = json.loads(text)
        return message.get("type") if isinstance(message, dict) else None
    return None


class RemoteRooms:
    """Rooms other replicas hold, for this replica's viewers."""

    def __init__(
        self, peers: Peers, *, replica_url: str, stall_s: float, heartbeat_s: float
    ) -> None:
        """`stall_s`: how long a viewer may take nothing before it is dropped (1013);
        `heartbeat_s`: how often the socket to the room's replica is pinged (one that
        goes silent without closing is given up after one unanswered ping)."""
        self._peers = peers
        self._replica_url = replica_url
        self._stall_s = stall_s
        self._heartbeat_s = heartbeat_s

    async def watch(
        self,
        replica_url: str,
        room_id: str,
        *,
        viewer: web.WebSocketResponse,
        forwarded_for: str,
        on_end: Callable[[str | None], None],
    ) -> RemoteWatch:
        """Watch the room on its replica; raises its refusal (`unknown_room`, `busy`...)."""
        upstream: aiohttp.ClientWebSocketResponse | None = None
        try:
            # One deadline for reaching it and its two answers: a peer that takes the
            # connection and says nothing holds this viewer's socket no longer.
            async with asyncio.timeout(CONNECT_S):
                upstream = await self._connect(replica_url, forwarded_for)
                _expect(await upstream.receive(), "hello")  # the viewer had this replica's
                await upstream.send_str(json.dumps({"type": "watch", "room": room_id}))
                first = await upstream.receive()
                _expect(first, "watching")
            await viewer.send_str(first.data)
        except BaseException as exc:
            if upstream is not None:
                await upstream.close()
            if isinstance(exc, TimeoutError):
                raise _gone() from None
            raise
        return RemoteWatch(upstream, viewer, stall_s=self._stall_s, on_end=on_end)

    async def _connect(
        self, replica_url: str, forwarded_for: str
    ) -> aiohttp.ClientWebSocketResponse:
        try:
            return await self._peers.session().ws_connect(
                f"{replica_url}/api/v1/ws",
                protocols=(SUBPROTOCOL,),
                # The viewer's address, and that this socket is a relay (counted by
                # this replica already, not again by the room's: see `client_socket`).
                headers={hdrs.X_FORWARDED_FOR: forwarded_for, FORWARDED_HEADER: self._replica_url},
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CONNECT_S),
                autoping=True,
                heartbeat=self._heartbeat_s,
            )
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("the replica %s holding a room does not answer: %s", replica_url, exc)
            raise _gone() from exc


def _expect(frame: aiohttp.WSMessage, wanted: str) -> None:
    """Raise unless `frame` is the `wanted` message: the room's refusal, or `_gone`."""
    if frame.type is not aiohttp.WSMsgType.TEXT:
        raise _gone()
    answer = json.loads(frame.data)
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind == "error":
        refusal = _REFUSALS.get(answer.get("code"), UnknownRoom)
        raise refusal(str(answer.get("message", "the room refused this viewer")))
    if kind != wanted:
        raise _gone()


def _gone() -> UnknownRoom:
    return UnknownRoom(
        "the server replica holding this room does not answer; the room may have ended"
    )
