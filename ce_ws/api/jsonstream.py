"""JSON response bodies written in bounded pieces, yielding to the event loop between them.

A batch response can hold tens of megabytes of output. Serializing that in
one call (pydantic or `json`) holds the GIL throughout, so a thread would not
help: the 16 MiB of a maximal run stalled the loop for about 0.1 s, a 120 MB
one for over a second. Here no piece takes more than about a millisecond,
and the transport's flow control paces the writes to the client's reading.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from aiohttp import web

#: Characters of one long string serialized at a time, and bytes of one write.
PIECE = 64 * 1024


def json_pieces(value: Any) -> Iterator[str]:
    """`value` (JSON-ready, as `model_dump(mode="json")` gives it) as JSON text, in pieces.

    Objects are taken apart and long strings cut, so no piece costs more than
    `PIECE` characters of serialization; cutting a `str` never splits a
    character, and escaping works character by character.
    """
    if isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            yield ("," if index else "") + _dumps(key) + ":"
            yield from json_pieces(item)
        yield "}"
    elif isinstance(value, str) and len(value) > PIECE:
        yield '"'
        for start in range(0, len(value), PIECE):
            yield _dumps(value[start : start + PIECE])[1:-1]
        yield '"'
    else:
        yield _dumps(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def stream_json(
    request: web.Request, data: dict[str, Any], status: int = HTTPStatus.OK
) -> web.StreamResponse:
    """Send `data` as a JSON body, a piece at a time."""
    response = web.StreamResponse(status=status)
    response.content_type = "application/json"
    response.charset = "utf-8"
    await response.prepare(request)
    pending: list[str] = []
    size = 0
    for piece in json_pieces(data):
        pending.append(piece)
        size += len(piece)
        if size >= PIECE:
            await _write(response, pending)
            size = 0
    await _write(response, pending)
    await response.write_eof()
    return response


async def _write(response: web.StreamResponse, pending: list[str]) -> None:
    await response.write("".join(pending).encode())
    pending.clear()
    # A write waits only once the transport's buffer is full: yield anyway,
    # so a fast reader cannot let the whole body go out in one loop step.
    await asyncio.sleep(0)
