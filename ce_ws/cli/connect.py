"""Opening the server's WebSocket and REST calls, each failure as an `Ending` (69).

Every way the server cannot be reached (refused, no such host, the wrong
path, an HTTP refusal of the upgrade, no answer in time) becomes
`Unavailable`, whose ending says why in one line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from pydantic import TypeAdapter, ValidationError
from yarl import URL

from ce_ws.cli.endpoints import LANGUAGES_PATH, rest_url, ws_url
from ce_ws.cli.outcome import EX_UNAVAILABLE, Ending, unreachable_ending
from ce_ws.cli.settings import CONNECT_TIMEOUT_S
from ce_ws.protocol import SUBPROTOCOL, LanguageInfo


class Unavailable(Exception):
    """The server could not be reached or refused us; `ending` says why."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending.why)
        self.ending = ending


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@contextlib.asynccontextmanager
async def open_socket(
    server: URL, token: str | None
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """The server's interactive WebSocket, open for the `with` body."""
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(connect=CONNECT_TIMEOUT_S)
    ) as http:
        try:
            ws = await http.ws_connect(
                ws_url(server),
                headers=_headers(token),
                protocols=(SUBPROTOCOL,),
                # The server's own cap applies to what we send; what it sends
                # (output frames) has no size a client must refuse.
                max_msg_size=0,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise Unavailable(_http_refusal(server, exc.status, exc.message)) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Unavailable(unreachable_ending(str(server), _reason(exc))) from exc
        async with ws:
            yield ws


async def fetch_languages(server: URL, token: str | None) -> list[LanguageInfo]:
    """`GET /api/v1/languages`: the server's languages."""
    data = await _get_json(rest_url(server, LANGUAGES_PATH), token)
    try:
        return TypeAdapter(list[LanguageInfo]).validate_python(data)
    except ValidationError as exc:
        raise Unavailable(
            Ending(EX_UNAVAILABLE, f"{server} answered something that is not a language list")
        ) from exc


async def _get_json(url: URL, token: str | None) -> Any:
    timeout = aiohttp.ClientTimeout(total=CONNECT_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(url, headers=_headers(token)) as response,
        ):
            if response.status != 200:
                raise Unavailable(_http_refusal(url, response.status, response.reason or ""))
            return await response.json()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise Unavailable(unreachable_ending(str(url.origin()), _reason(exc))) from exc


def _http_refusal(url: URL, status: int, reason: str) -> Ending:
    if status == 404:
        return Ending(
            EX_UNAVAILABLE, f"{url} is not a Code Executor server (HTTP 404); check --server"
        )
    if status == 401:
        return Ending(
            EX_UNAVAILABLE, "the server wants a token (HTTP 401); pass --token or set CE_TOKEN"
        )
    return Ending(
        EX_UNAVAILABLE, f"the server refused the connection (HTTP {status} {reason})".rstrip()
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "no such host"
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.errno:
        return os.strerror(exc.os_error.errno).lower()  # "connection refused"
    return str(exc) or type(exc).__name__
