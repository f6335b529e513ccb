"""The operator's API, behind `CE_ADMIN_TOKEN`: the engines, and draining one.

    GET  /admin/engines                 every engine's condition
    POST /admin/engines/{name}/drain    take no new run there; live runs go on
    POST /admin/engines/{name}/resume   take runs there again

Draining is how an engine host is taken out for maintenance without dropping
a lesson: wait until its `runs` is 0 (every run ended on its own), then stop it.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ce_ws.api.appkeys import SANDBOX, SETTINGS
from ce_ws.api.auth import bearer_token
from ce_ws.api.http import json_response
from ce_ws.api.ops import engine_readiness
from ce_ws.errors import Unauthorized
from ce_ws.protocol import EngineList


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/admin/engines", engines)
    router.add_post("/admin/engines/{name}/drain", drain)
    router.add_post("/admin/engines/{name}/resume", resume)


def _require_admin(request: web.Request) -> None:
    token = request.app[SETTINGS].admin_token
    if token is None:
        raise Unauthorized("the admin API is off on this server; set CE_ADMIN_TOKEN to use it")
    given = bearer_token(request)
    if given is None or not hmac.compare_digest(given, token.get_secret_value()):
        raise Unauthorized("the admin API needs the server's admin token (Authorization: Bearer)")


async def _engine_list(request: web.Request) -> web.Response:
    states = await request.app[SANDBOX].engine_states()
    return json_response(EngineList(engines=engine_readiness(states)))


async def engines(request: web.Request) -> web.Response:
    """`GET /admin/engines`."""
    _require_admin(request)
    return await _engine_list(request)


async def drain(request: web.Request) -> web.Response:
    """`POST /admin/engines/{name}/drain`: answers every engine's condition after it."""
    _require_admin(request)
    request.app[SANDBOX].drain(request.match_info["name"])
    return await _engine_list(request)


async def resume(request: web.Request) -> web.Response:
    """`POST /admin/engines/{name}/resume`: answers every engine's condition after it."""
    _require_admin(request)
    request.app[SANDBOX].resume(request.match_info["name"])
    return await _engine_list(request)
