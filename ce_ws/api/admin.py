"""The operator's API, behind `CE_ADMIN_TOKEN`: the engines, and draining one.

    GET  /admin/engines                 every engine's condition
    POST /admin/engines/{name}/drain    take no new run there; live runs go on
    POST /admin/engines/{name}/resume   take runs there again
    POST /admin/runs/{run_id}/kill      end a run (status `killed`), on whichever replica

A run's kill reaching a replica that does not hold it is forwarded to the
one that does (replicas sharing a Redis know where each run lives).

Draining is how an engine host is taken out for maintenance without dropping
a lesson: wait until its `runs` is 0 (every run ended on its own), then stop it.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import hdrs, web

from ce_ws.api.appkeys import PEERS, RUNNER, SANDBOX, SETTINGS
from ce_ws.api.auth import bearer_token
from ce_ws.api.http import json_response
from ce_ws.api.ops import engine_readiness
from ce_ws.api.peers import CONNECT_S, FORWARDED_HEADER
from ce_ws.errors import Busy, Unauthorized, UnknownRun, clip
from ce_ws.protocol import EngineList, KilledRun
from ce_ws.secret import same_secret


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/admin/engines", engines)
    router.add_post("/admin/engines/{name}/drain", drain)
    router.add_post("/admin/engines/{name}/resume", resume)
    router.add_post("/admin/runs/{run_id}/kill", kill_run)


def _require_admin(request: web.Request) -> None:
    token = request.app[SETTINGS].admin_token
    if token is None:
        raise Unauthorized("the admin API is off on this server; set CE_ADMIN_TOKEN to use it")
    given = bearer_token(request)
    if given is None or not same_secret(given, token.get_secret_value()):
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


async def kill_run(request: web.Request) -> web.Response:
    """`POST /admin/runs/{run_id}/kill`: here, or forwarded to the replica holding the run."""
    _require_admin(request)
    app, run_id = request.app, request.match_info["run_id"]
    settings, runner = app[SETTINGS], app[RUNNER]
    handle = runner.get(run_id)
    if handle is not None and not handle.ended:
        await handle.kill()
        return json_response(KilledRun(run_id=run_id, replica=settings.replica_url()))
    if runner.shared is not None and FORWARDED_HEADER not in request.headers:
        owner = await runner.shared.locate(run_id)
        if owner is not None and owner != runner.shared.replica_url:
            return await _forward(request, owner)
    raise UnknownRun(f"no live run has the id {clip(run_id)!r} on any replica; it may have ended")


async def _forward(request: web.Request, owner: str) -> web.Response:
    """The same request to the replica holding the run; its answer, as it gave it."""
    headers = {
        hdrs.AUTHORIZATION: request.headers.get(hdrs.AUTHORIZATION, ""),
        FORWARDED_HEADER: request.app[SETTINGS].replica_url(),
    }
    try:
        async with (
            asyncio.timeout(CONNECT_S),
            request.app[PEERS].session().post(f"{owner}{request.path}", headers=headers) as answer,
        ):
            return web.Response(
                body=await answer.read(), status=answer.status, content_type=answer.content_type
            )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise Busy(
            f"the replica holding this run ({owner}) does not answer ({exc!r}); its runs end"
            " when it does, or are reaped when it restarts"
        ) from exc
