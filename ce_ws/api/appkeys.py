"""Every shared object of the aiohttp application, each behind one `AppKey`."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from ce_ws.api.http import ErrorShape
from ce_ws.api.identity import Identity
from ce_ws.api.peers import Peers
from ce_ws.api.remote_watch import RemoteRooms
from ce_ws.config import Settings
from ce_ws.languages import LanguageTable
from ce_ws.metrics import Metrics
from ce_ws.origins import OriginPolicy
from ce_ws.recordings.store import RecordingStore
from ce_ws.rooms.registry import RoomRegistry
from ce_ws.runs.admission import ClientConnections, RateLimiter
from ce_ws.runs.runner import Runner
from ce_ws.sandbox.base import Backend


class LiveSocket(Protocol):
    """An open WebSocket of any surface (the native one, Piston's `/connect`)."""

    async def going_away(self) -> None:
        """Server shutdown (runs already ended by the Runner): close 1001."""


SETTINGS = web.AppKey("settings", Settings)
#: Who a request's client is (token, browser cookie, address), for caps and rate limits.
IDENTITY = web.AppKey("identity", Identity)
#: The host names and origins that are the server's own (from the settings).
ORIGINS = web.AppKey("origins", OriginPolicy)
LANGUAGES = web.AppKey("languages", LanguageTable)
#: The one way runs start, are found and end.
RUNNER = web.AppKey("runner", Runner)
#: The live rooms of this server (contract section 3).
ROOMS = web.AppKey("rooms", RoomRegistry)
#: The client for the other replicas (set only with `CE_REDIS_URL`, as the next one).
PEERS = web.AppKey("peers", Peers)
#: Rooms held by other replicas, for this replica's viewers.
REMOTE_ROOMS = web.AppKey("remote_rooms", RemoteRooms)
#: Run recordings (asciicast v2) and their budget.
RECORDINGS = web.AppKey("recordings", RecordingStore)
#: Where runs get their boxes; started and closed by the app.
SANDBOX = web.AppKey("sandbox", Backend)
#: Open WebSockets per client, for the per-client connection cap.
CLIENT_CONNECTIONS = web.AppKey("client_connections", ClientConnections)
#: Open HTTP requests per client address (WebSockets apart), for their per-client cap.
HTTP_REQUESTS = web.AppKey("http_requests", ClientConnections)
#: Refused `execute` requests per client address, against their own budget.
REFUSALS = web.AppKey("refusals", RateLimiter)
#: Open WebSocket connections of every surface, capped together, told 1001 at shutdown.
CONNECTIONS = web.AppKey("connections", set[LiveSocket])
#: The server's Prometheus metrics (its own registry).
METRICS = web.AppKey("metrics", Metrics)
#: Surfaces that answer refusals in their own shape, by path prefix (else the native one).
ERROR_SHAPES = web.AppKey("error_shapes", dict[str, ErrorShape])
