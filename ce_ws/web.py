"""The aiohttp application: `create_app(settings)`, routes, cleanup contexts.

Knows nothing of Docker: it reaches the engine only through the session layer
and the `Engine` object kept behind `ENGINE`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from ce_ws import rest
from ce_ws.admission import Admission, ClientConnections, RateLimiter
from ce_ws.appkeys import (
    ADMISSION,
    BATCH_RUNS,
    CLIENT_CONNECTIONS,
    CONNECTIONS,
    ENGINE,
    HTTP_REQUESTS,
    LANGUAGES,
    METRICS,
    POOL,
    RATE_LIMITER,
    REFUSALS,
    RUN_TASKS,
    SANDBOX,
    SETTINGS,
    TELEMETRY,
)
from ce_ws.auth import bearer_token, token_is_valid
from ce_ws.config import Settings
from ce_ws.connection import Connection
from ce_ws.errors import RateLimited
from ce_ws.languages import LanguageTable, load_languages
from ce_ws.logs import EventLog
from ce_ws.metrics import Metrics
from ce_ws.protocol import SUBPROTOCOL, CloseCode, ErrorMessage
from ce_ws.sandbox import BoxProfile, DockerSandbox, Engine, WarmPool, host_memory_bytes
from ce_ws.telemetry import Telemetry

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: What the log says when shutdown had to remove what runs left behind.
SHUTDOWN_SWEEP = "shutdown sweep removed"
SECCOMP_PROFILE = Path(__file__).resolve().parent.parent / "docker" / "seccomp.json"


def create_app(settings: Settings) -> web.Application:
    """Build the application; does no I/O (the cleanup contexts do, at startup)."""
    app = web.Application(client_max_size=settings.max_message_bytes)
    app[SETTINGS] = settings
    app[LANGUAGES] = load_languages()
    app[ADMISSION] = Admission(settings.capacity)
    app[RATE_LIMITER] = RateLimiter(settings.capacity.runs_per_minute)
    app[REFUSALS] = RateLimiter(settings.capacity.refusals_per_minute, events="refused requests")
    app[CLIENT_CONNECTIONS] = ClientConnections(settings.capacity.max_connections_per_client)
    app[HTTP_REQUESTS] = ClientConnections(settings.capacity.max_http_per_client)
    app[CONNECTIONS] = set()
    app[RUN_TASKS] = set()
    app[BATCH_RUNS] = {}
    _add_telemetry(app)
    app.cleanup_ctx.extend([docker_engine, engine_events, orphan_reaper, warm_pool])
    app.on_shutdown.extend([close_connections, rest.end_batch_runs])
    app.on_response_prepare.append(add_security_headers)
    app.middlewares.append(limit_http_per_client)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/ws", websocket)
    app.router.add_get("/api/v1/languages", rest.languages)
    app.router.add_post("/api/v1/execute", rest.execute)
    app.router.add_get("/api/v1/openapi.json", rest.openapi)
    app.router.add_get("/docs", rest.docs)
    app.router.add_get("/readyz", rest.readyz)
    app.router.add_get("/metrics", rest.metrics)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    return app


def _add_telemetry(app: web.Application) -> None:
    """Metrics (gauges read from their owners at scrape time) and the event log."""
    metrics = Metrics()
    admission, connections = app[ADMISSION], app[CONNECTIONS]
    metrics.watch(
        active_runs=lambda: admission.active,
        queued_runs=lambda: admission.queued,
        websocket_connections=lambda: len(connections),
    )
    app[METRICS] = metrics
    app[TELEMETRY] = Telemetry(metrics, EventLog())


# -- cleanup contexts: one per resource -------------------------------------


async def docker_engine(app: web.Application) -> AsyncIterator[None]:
    """Open the engine client; at shutdown end every run, then close it."""
    settings = app[SETTINGS]
    profile = await asyncio.to_thread(SECCOMP_PROFILE.read_text)
    engine = Engine(settings.sandbox, server_id=settings.server_id, seccomp_profile=profile)
    engine.on_box_started = app[METRICS].box_started
    app[ENGINE] = engine
    yield
    running: set[asyncio.Task[None]] = app[RUN_TASKS]
    tasks = list(running)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(
            tasks, timeout=settings.shutdown_grace_s + settings.sandbox.control_timeout_s
        )
    await engine.finish_cleanups()
    with contextlib.suppress(Exception):
        if leftovers := await engine.reap(spare_live=False):
            # Every run and warm box removes its own container and folder.
            log.warning("%s: %d leftovers no run cleaned up", SHUTDOWN_SWEEP, leftovers)
    await engine.close()


async def engine_events(app: web.Application) -> AsyncIterator[None]:
    """Listen to the engine's OOM events for the whole life of the server."""
    task = asyncio.create_task(app[ENGINE].watch_events())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def orphan_reaper(app: web.Application) -> AsyncIterator[None]:
    """Remove what a crashed server left behind: at startup, then periodically."""
    task = asyncio.create_task(_reap_forever(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _reap_forever(app: web.Application) -> None:
    settings = app[SETTINGS]
    while True:
        try:
            removed = await app[ENGINE].reap()
            if removed:
                log.info("reaper removed %d leftovers", removed)
                app[METRICS].reaped(removed)
        except Exception as exc:
            log.warning("reaper failed: %s", exc)
        await asyncio.sleep(settings.sandbox.reap_interval_s)


async def warm_pool(app: web.Application) -> AsyncIterator[None]:
    """Keep containers started ahead of time (when enabled); destroy them at shutdown."""
    settings = app[SETTINGS]
    engine = app[ENGINE]
    if not settings.pool.enabled:
        app[SANDBOX] = DockerSandbox(engine)
        yield
        return
    pool = WarmPool(
        engine,
        settings.pool,
        profiles=pooled_profiles(settings, app[LANGUAGES]),
        memory_budget_bytes=int(host_memory_bytes() * settings.pool.max_memory_share),
    )
    app[POOL] = pool
    app[SANDBOX] = DockerSandbox(engine, pool)
    app[METRICS].watch_pool(
        size=lambda: pool.size, hits=lambda: pool.stats.hits, misses=lambda: pool.stats.misses
    )
    task = asyncio.create_task(pool.keep_filled())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await pool.close()


def pooled_profiles(settings: Settings, languages: LanguageTable) -> list[BoxProfile]:
    """Default limits, with and without a terminal, for each kind of language.

    A kind is what the container fixes at create time: whether /tmp may hold
    a compiled program, and the runtime.
    """
    kinds = {
        (language.compiled, settings.sandbox.runtime_for(language.name)) for language in languages
    }
    return [
        BoxProfile.of(settings.defaults, tty=tty, tmp_exec=compiled, runtime=runtime)
        for tty in (True, False)
        for compiled, runtime in sorted(kinds)
    ]


async def close_connections(app: web.Application) -> None:
    """At shutdown, end every run (sending its `exit`), then say we are going away."""
    connections: set[Connection] = app[CONNECTIONS]
    grace = app[SETTINGS].shutdown_grace_s
    await asyncio.gather(*(connection.shut_down(grace_s=grace) for connection in list(connections)))


# -- handlers ----------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """The process is alive."""
    return web.json_response({"status": "ok"})


async def index(request: web.Request) -> web.FileResponse:
    """The playground page."""
    return web.FileResponse(STATIC_DIR / "index.html")


#: Sent with every HTTP response: the page loads only its own files, talks only
#: to its own origin, and cannot be framed (xterm and CodeMirror inject styles).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Harden every response the browser sees."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def limit_http_per_client(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Cap the HTTP requests one address has open; the extra is refused before its body.

    A request holds a connection (a file descriptor) while its body trickles
    in; WebSockets are capped apart, for their whole life.
    """
    if request.match_info.handler is websocket:
        return await handler(request)
    client_key = request.remote or "unknown"
    open_requests = request.app[HTTP_REQUESTS]
    if not open_requests.has_room(client_key):
        refusal = RateLimited(
            f"more than {open_requests.per_client} open requests from this client"
        )
        return await _answer_and_close(request, rest.error_response(refusal))
    with open_requests.hold(client_key):
        return await handler(request)


async def _answer_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send `response`, then drop the connection at once.

    aiohttp would otherwise go on reading (and ignoring) an unread body for
    up to its lingering time: a refusal must not keep the connection it refuses.
    """
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def origin_allowed(request: web.Request, allowed: list[str]) -> bool:
    """No Origin (not a browser), the server's own origin, or an allowed one."""
    origin = request.headers.get("Origin")
    if origin is None or origin in allowed:
        return True
    return urlsplit(origin).netloc == request.host


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """`GET /api/v1/ws`: checks, upgrade, then one `Connection` until close."""
    app = request.app
    settings = app[SETTINGS]
    if not origin_allowed(request, settings.allowed_origins):
        raise web.HTTPForbidden(text="origin not allowed")
    ws = web.WebSocketResponse(
        protocols=(SUBPROTOCOL,),
        max_msg_size=settings.max_message_bytes,
        heartbeat=settings.heartbeat_s,
    )
    await ws.prepare(request)
    if len(app[CONNECTIONS]) >= settings.capacity.max_connections:
        await ws.close(code=CloseCode.TRY_AGAIN_LATER, message=b"server overloaded")
        return ws
    client_key = request.remote or "unknown"
    if not app[CLIENT_CONNECTIONS].has_room(client_key):
        await _refuse_connection(ws, app[CLIENT_CONNECTIONS].per_client)
        return ws
    connection = Connection(
        ws,
        client_key=client_key,
        authorized=not settings.tokens or token_is_valid(bearer_token(request), settings.tokens),
        settings=settings,
        languages=app[LANGUAGES],
        sandbox=app[SANDBOX],
        admission=app[ADMISSION],
        rate_limiter=app[RATE_LIMITER],
        run_tasks=app[RUN_TASKS],
        telemetry=app[TELEMETRY].for_client(client_key, via="ws"),
    )
    app[CONNECTIONS].add(connection)
    try:
        with app[CLIENT_CONNECTIONS].hold(client_key):
            await connection.serve()
    finally:
        app[CONNECTIONS].discard(connection)
    return ws


async def _refuse_connection(ws: web.WebSocketResponse, per_client: int) -> None:
    """Over the per-client connection cap: say why, then close with 1008."""
    refusal = ErrorMessage(
        code=RateLimited.code, message=f"more than {per_client} connections from this client"
    )
    await ws.send_str(refusal.to_json())
    await ws.close(code=CloseCode.POLICY, message=b"too many connections from this client")
