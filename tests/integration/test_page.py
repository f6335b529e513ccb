"""The playground page is served locally with hardening headers."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def test_page_and_assets_carry_security_headers(client: TestClient[Any, Any]) -> None:
    for path in ("/", "/static/index.html", "/healthz"):
        response = await client.get(path)
        assert response.status == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_page_loads_nothing_from_elsewhere(client: TestClient[Any, Any]) -> None:
    html = await (await client.get("/")).text()
    assert "http://" not in html and "https://" not in html
    assert "/static/dist/app.js" in html


async def test_static_files_do_not_follow_symlinks_out_of_the_folder(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/static/../pyproject.toml")
    assert response.status in (403, 404)
