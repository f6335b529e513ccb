"""Every shared object of the aiohttp application, each behind one `AppKey`."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ce_ws.admission import Admission, RateLimiter
from ce_ws.config import Settings
from ce_ws.connection import Connection
from ce_ws.languages import LanguageTable
from ce_ws.sandbox import Engine

SETTINGS = web.AppKey("settings", Settings)
LANGUAGES = web.AppKey("languages", LanguageTable)
ENGINE = web.AppKey("engine", Engine)
ADMISSION = web.AppKey("admission", Admission)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
#: Open WebSocket connections, ended (runs first, then 1001) at shutdown.
CONNECTIONS = web.AppKey("connections", set[Connection])
#: Every run's task, so shutdown can end them and the reaper can spare them.
RUN_TASKS = web.AppKey("run_tasks", dict[str, "asyncio.Task[object]"])
