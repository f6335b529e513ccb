"""The playground page is served locally with hardening headers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient


async def test_page_and_assets_carry_security_headers(client: TestClient[Any, Any]) -> None:
    for path in ("/", "/static/index.html", "/healthz"):
        response = await client.get(path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_bundle_goes_gzipped_to_browsers_that_accept_it(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get(
        "/static/dist/app.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert response.status == 200
    assert response.headers["Content-Encoding"] == "gzip"
    gzipped = await response.read()
    assert len(gzipped) < 400 * 1024  # the minified bundle is about 950 KiB, gzipped about 300


async def test_page_loads_nothing_from_elsewhere(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/")).text()
    assert "http://" not in html and "https://" not in html
    assert "/static/dist/app.js" in html


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
