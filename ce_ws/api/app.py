"""The aiohttp application: `create_app(settings)`, routes, cleanup contexts.

Knows nothing of Docker: runs go through the `Runner`; the sandbox backend
is built here (the Docker one unless a test gives another) and only started,
asked for readiness and closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from ce_ws.api import admin, embed, ops, pages, recordings, rest, ws
from ce_ws.api.appkeys import (
    CLIENT_CONNECTIONS,
    CONNECTIONS,
    ERROR_SHAPES,
    HTTP_REQUESTS,
    IDENTITY,
    LANGUAGES,
    METRICS,
    ORIGINS,
    PEERS,
    RECORDINGS,
    REFUSALS,
    REMOTE_ROOMS,
    ROOMS,
    RUNNER,
    SANDBOX,
    SETTINGS,
)
from ce_ws.api.compat import codapi, judge0, piston
from ce_ws.api.guards import WEBSOCKET_ROUTE, host_guard, limit_http_per_client
from ce_ws.api.http import add_security_headers
from ce_ws.api.http_errors import client_errors
from ce_ws.api.identity import Identity
from ce_ws.api.peers import Peers
from ce_ws.api.remote_watch import RemoteRooms
from ce_ws.config import Settings
from ce_ws.languages import load_languages
from ce_ws.logs import EventLog
from ce_ws.metrics import Metrics
from ce_ws.origins import OriginPolicy, parse_authority
from ce_ws.recordings.store import RecordingStore
from ce_ws.rooms.directory import RoomDirectory
from ce_ws.rooms.registry import RoomRegistry
from ce_ws.runs.admission import ClientConnections, RateLimiter
from ce_ws.runs.runner import Runner
from ce_ws.sandbox.base import Backend
from ce_ws.sandbox.fleet import EngineFleet
from ce_ws.telemetry import Telemetry

log = logging.getLogger(__name__)
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def create_app(settings: Settings, *, sandbox: Backend | None = None) -> web.Application:
    """Build the application; does no I/O (the cleanup contexts do, at startup).

    `sandbox` is the backend runs get their boxes from; by default the Docker
    engines of `settings`.
    """
    app = web.Application(
        client_max_size=settings.max_message_bytes,
        middlewares=[client_errors, host_guard, limit_http_per_client],
    )
    languages = load_languages()
    metrics = Metrics()
    backend = sandbox or EngineFleet(settings, languages)
    runner = Runner(
        settings, backend, languages=languages, telemetry=Telemetry(metrics, EventLog())
    )
    app[SETTINGS] = settings
    app[ORIGINS] = OriginPolicy.of(
        bind_host=settings.host,
        public_url=settings.public_url,
        allowed_hosts=[*settings.allowed_hosts, *_replica_host(settings)],
        allowed_origins=settings.allowed_origins,
    )
    app[IDENTITY] = Identity(settings)
    app[LANGUAGES] = languages
    app[METRICS] = metrics
    app[SANDBOX] = backend
    app[RUNNER] = runner
    app[ROOMS] = RoomRegistry(settings.sharing, _room_directory(settings))
    app[RECORDINGS] = RecordingStore(settings.recordings)
    app[CONNECTIONS] = set()
    app[CLIENT_CONNECTIONS] = ClientConnections(settings.capacity.max_connections_per_client)
    app[HTTP_REQUESTS] = ClientConnections(settings.capacity.max_http_per_client)
    app[REFUSALS] = RateLimiter(settings.capacity.refusals_per_minute, events="refused requests")
    app[ERROR_SHAPES] = {}
    _watch_gauges(app)
    app.cleanup_ctx.extend([recordings.recordings_store, sandbox_backend, run_registry])
    if settings.redis_url is not None:
        app[PEERS] = Peers()
        app[REMOTE_ROOMS] = RemoteRooms(
            app[PEERS],
            replica_url=settings.replica_url(),
            stall_s=settings.sharing.viewer_stall_s,
            heartbeat_s=settings.heartbeat_s,
        )
        app.cleanup_ctx.append(peers)
    app.on_shutdown.append(end_runs_then_sockets)
    app.on_response_prepare.append(add_security_headers)
    _add_routes(app.router)
    judge0.add_routes(app)
    codapi.add_routes(app)
    piston.add_routes(app)
    embed.add_routes(app)
    return app


def _room_directory(settings: Settings) -> RoomDirectory | None:
    """Where rooms are announced for the other replicas (with a shared Redis)."""
    if settings.redis_url is None:
        return None
    if settings.advertise_url is None and settings.host in _LOOPBACK:
        log.warning(
            "replicas sharing Redis reach this one at %s: only replicas on this machine can;"
            " set CE_ADVERTISE_URL to the address the others reach it at",
            settings.replica_url(),
        )
    return RoomDirectory(
        url=settings.redis_url,
        replica_url=settings.replica_url(),
        max_room_s=settings.sharing.max_room_s,
    )


def _replica_host(settings: Settings) -> list[str]:
    """The host the other replicas name in their requests to this one (with a shared Redis)."""
    if settings.redis_url is None:
        return []
    authority = parse_authority(urlsplit(settings.replica_url()).netloc)
    return [authority[0]] if authority is not None else []


def _add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/healthz", ops.healthz)
    router.add_get("/readyz", ops.readyz)
    router.add_get("/metrics", ops.metrics)
    router.add_get("/api/v1/ws", ws.websocket, name=WEBSOCKET_ROUTE)
    router.add_post("/api/v1/execute", rest.execute)
    router.add_get("/api/v1/languages", ops.languages)
    router.add_get("/api/v1/recordings/{name}", recordings.recording)
    router.add_get("/api/v1/openapi.json", ops.openapi)
    admin.add_routes(router)
    pages.add_routes(router)


def _watch_gauges(app: web.Application) -> None:
    """Gauges read from their owners at scrape time."""
    runner, connections, backend = app[RUNNER], app[CONNECTIONS], app[SANDBOX]

    def pool(field: str) -> float:
        figures = backend.pool_figures()
        return float(getattr(figures, field)) if figures is not None else 0.0

    app[METRICS].watch(
        active_runs=lambda: runner.admission.active,
        queued_runs=lambda: runner.admission.queued,
        websocket_connections=lambda: len(connections),
    )
    app[METRICS].watch_pool(
        size=lambda: pool("idle"), hits=lambda: pool("hits"), misses=lambda: pool("misses")
    )


# -- cleanup contexts: one per resource -------------------------------------


async def sandbox_backend(app: web.Application) -> AsyncIterator[None]:
    """Start the sandbox (engine, reaper, events, pool); at the end, close it."""
    await app[SANDBOX].start(app[RUNNER].telemetry)
    yield
    await app[SANDBOX].aclose()


async def peers(app: web.Application) -> AsyncIterator[None]:
    """The client for the other replicas; closed after every connection ended."""
    yield
    await app[PEERS].aclose()


async def run_registry(app: web.Application) -> AsyncIterator[None]:
    """Every run ends before the sandbox closes (idempotent after `end_runs_then_sockets`);
    then, every socket's handler being over too, the runs' and sockets' places in Redis go."""
    yield
    runner = app[RUNNER]
    await runner.aclose(grace_s=app[SETTINGS].shutdown_grace_s)
    if runner.shared is not None:
        await runner.shared.aclose()


async def end_runs_then_sockets(app: web.Application) -> None:
    """At shutdown: every run gets its `exit` (bounded), rooms close, then sockets 1001."""
    await app[RUNNER].aclose(grace_s=app[SETTINGS].shutdown_grace_s)
    await app[ROOMS].aclose()
    sockets = app[CONNECTIONS]
    await asyncio.gather(*(socket.going_away() for socket in list(sockets)))
