"""The batch REST API (contract §2): `POST /api/v1/execute`, an adapter over the Runner.

The handler checks the request's origin and type, spends the client's
refusal budget before parsing, authorizes, and runs it with `run_to_end`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from ce_ws.api.appkeys import REFUSALS, RUNNER, SETTINGS
from ce_ws.api.auth import parse_authorized
from ce_ws.api.batch import answer_batch, read_body, run_to_end
from ce_ws.api.guards import require_json, require_own_origin
from ce_ws.api.http import error_response
from ce_ws.errors import CeError
from ce_ws.protocol import parse_execute_request
from ce_ws.runs.runner import Client


async def execute(request: web.Request) -> web.StreamResponse:
    """`POST /api/v1/execute`: run a program to its end; a refusal is a 4xx/5xx body."""
    return await answer_batch(request, via="rest", handle=_execute, refuse=error_response)


async def _execute(request: web.Request, client: Client) -> tuple[HTTPStatus, dict[str, Any]]:
    """Check, parse and run one request; raises the `CeError` that refuses it."""
    runner, settings = request.app[RUNNER], request.app[SETTINGS]
    try:
        require_own_origin(request)  # before the body is read: a page elsewhere gets nothing run
        require_json(request)
        # Each refusal costs a parse and a log line: a client that has earned
        # too many is refused before its body is even read.
        request.app[REFUSALS].check_left(client.key)
        body = parse_authorized(
            request, await read_body(request, settings), settings.tokens, parse_execute_request
        )
    except CeError as exc:
        runner.refused(client, exc)
        raise
    return HTTPStatus.OK, (await run_to_end(request, body, client)).to_data()
