"""Every shared object of the aiohttp application, each behind one `AppKey`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ce_ws.admission import Admission, ClientConnections, RateLimiter
from ce_ws.config import Settings
from ce_ws.connection import Connection
from ce_ws.languages import LanguageTable
from ce_ws.metrics import Metrics
from ce_ws.sandbox import DockerSandbox, Engine, WarmPool
from ce_ws.session import Run
from ce_ws.telemetry import Telemetry

SETTINGS = web.AppKey("settings", Settings)
LANGUAGES = web.AppKey("languages", LanguageTable)
ENGINE = web.AppKey("engine", Engine)
ADMISSION = web.AppKey("admission", Admission)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
#: Refused `execute` requests per client address, against their own budget.
REFUSALS = web.AppKey("refusals", RateLimiter)
#: Open WebSockets per client address, for the per-client connection cap.
CLIENT_CONNECTIONS = web.AppKey("client_connections", ClientConnections)
#: Open HTTP requests per client address (WebSockets apart), for their per-client cap.
HTTP_REQUESTS = web.AppKey("http_requests", ClientConnections)
#: Open WebSocket connections, ended (runs first, then 1001) at shutdown.
CONNECTIONS = web.AppKey("connections", set[Connection])
#: Every run's task, so shutdown can end them.
RUN_TASKS = web.AppKey("run_tasks", set["asyncio.Task[None]"])
#: Where runs get their boxes: the warm pool first, cold starts otherwise.
SANDBOX = web.AppKey("sandbox", DockerSandbox)
#: The warm pool, when enabled.
POOL = web.AppKey("pool", WarmPool)
#: The server's Prometheus metrics (its own registry).
METRICS = web.AppKey("metrics", Metrics)
#: Metrics and the event log, handed out per client.
TELEMETRY = web.AppKey("telemetry", Telemetry)
#: REST runs in flight and their tasks, ended at shutdown.
BATCH_RUNS = web.AppKey("batch_runs", dict[Run, "asyncio.Task[None]"])
