"""The pages (playground, watch, replay) are served locally with hardening headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

#: Shaped like a room or recording id (the pages do not look rooms up).
ROOM_ID = "Zm9vYmFyYmF6cXV4cXV1eA"


async def test_page_and_assets_carry_security_headers(client: TestClient[Any, Any]) -> None:
    for path in ("/", "/static/index.html", "/healthz"):
        response = await client.get(path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("path", "bundle"),
    [("/", "app.js"), (f"/watch/{ROOM_ID}", "watch.js"), (f"/replay/{ROOM_ID}", "replay.js")],
)
async def test_page_loads_nothing_from_elsewhere(
    client: TestClient[Any, Any], path: str, bundle: str
) -> None:
    response = await client.get(path)
    assert response.status == 200, path
    html = await response.text()
    assert "http://" not in html and "https://" not in html
    assert f"/static/dist/{bundle}" in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_only_the_replay_page_may_compile_webassembly(client: TestClient[Any, Any]) -> None:
    """asciinema-player's inlined WASM needs 'wasm-unsafe-eval'; no other page gets it."""
    policies = {
        path: (await client.get(path)).headers["Content-Security-Policy"]
        for path in ("/", f"/watch/{ROOM_ID}", f"/replay/{ROOM_ID}", "/static/index.html")
    }
    assert "'wasm-unsafe-eval'" in policies.pop(f"/replay/{ROOM_ID}")
    for path, policy in policies.items():
        assert "wasm-unsafe-eval" not in policy, path
        assert "unsafe-eval" not in policy, path
        assert "frame-ancestors 'none'" in policy, path


@pytest.mark.parametrize("page", ["watch", "replay"])
@pytest.mark.parametrize(
    "room",
    [
        "short",
        "a" * 65,
        "abc.def-ghijklmnopq",
        "%2e%2e%2f%2e%2e%2fpyproject.toml",
        "..%2F..%2FREADME.md",
    ],
)
async def test_a_malformed_room_or_recording_id_gets_a_404_page(
    client: TestClient[Any, Any], page: str, room: str
) -> None:
    answer = await _raw_get(client, f"/{page}/{room}")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"404", answer[:300]
    assert b"text/html" in head
    assert b"not valid" in body and b'href="/"' in body
    assert b"[project]" not in body and b"<script" not in body


async def _raw_get(client: TestClient[Any, Any], path: str) -> bytes:
    """GET `path` exactly as written: a client library would normalise the dots away."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        host = f"{client.host}:{client.port}"
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    "path", ["/static/../pyproject.toml", "/static/%2e%2e/pyproject.toml", "/static/..%2fREADME.md"]
)
async def test_static_files_never_reach_outside_their_folder(
    client: TestClient[Any, Any], path: str
) -> None:
    answer = await _raw_get(client, path)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 403, 404), answer[:200]
    assert b"[project]" not in answer and b"Code Executor" not in answer
