"""The embed widget's files as a page of another origin gets them: CORS by the server's origin policy.

A module script of another origin runs only with `Access-Control-Allow-Origin`
naming the page's origin; these are the answers the browser judges (the
browser tests in tests/browser/test_embed.py run the widget itself).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from ce_ws.api.embed import WIDGET_DIR
from tests.integration.conftest import MakeClient
from tests.integration.test_origin_and_host import error_of

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = "https://course.example"
DENIED = "https://elsewhere.example"
_CHUNK_IMPORT = re.compile(rb'"\./(embed/[A-Za-z0-9_-]+\.js)"')


@pytest.fixture(scope="module", autouse=True)
def widget_built() -> None:
    """The build's files are what is served (the build is a no-op when it is current)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build-assets.sh")], cwd=ROOT, check=True)


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client(allowed_origins=[ALLOWED])


def _chunks() -> list[str]:
    """The chunks the entry imports (statically and lazily), as the build named them."""
    names = _CHUNK_IMPORT.findall((WIDGET_DIR / "embed.js").read_bytes())
    assert names, "the entry imports no chunk: did the build split it?"
    return sorted({name.decode() for name in names})


async def test_an_allowed_page_gets_the_widget_with_cors(client: TestClient[Any, Any]) -> None:
    response = await client.get("/embed.js", headers={"Origin": ALLOWED})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.content_type in ("text/javascript", "application/javascript")
    assert await response.read() == (WIDGET_DIR / "embed.js").read_bytes()


async def test_a_page_of_no_allowed_origin_gets_the_refusal_module(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/embed.js", headers={"Origin": DENIED})
    assert response.status == 200  # a module the browser runs: it says why in each snippet
    assert response.headers["Access-Control-Allow-Origin"] == DENIED
    assert "Origin" in response.headers["Vary"]
    body = await response.read()
    assert body == (WIDGET_DIR / "refused.js").read_bytes()
    assert b"CE_ALLOWED_ORIGINS" in body and b"api/v1/ws" not in body


async def test_no_origin_is_not_a_cross_origin_browser_and_gets_the_widget(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get("/embed.js")
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert await response.read() == (WIDGET_DIR / "embed.js").read_bytes()


async def test_the_servers_own_page_gets_the_widget(client: TestClient[Any, Any]) -> None:
    own = f"http://127.0.0.1:{client.port}"
    response = await client.get("/embed.js", headers={"Origin": own})
    assert response.headers["Access-Control-Allow-Origin"] == own
    assert await response.read() == (WIDGET_DIR / "embed.js").read_bytes()


async def test_every_chunk_comes_to_an_allowed_page_with_cors_and_a_long_cache(
    client: TestClient[Any, Any],
) -> None:
    for name in _chunks():
        response = await client.get(f"/{name}", headers={"Origin": ALLOWED})
        assert response.status == 200, name
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "immutable" in response.headers["Cache-Control"]
        assert await response.read() == (WIDGET_DIR / name).read_bytes()


async def test_chunks_are_refused_to_a_page_of_no_allowed_origin(
    client: TestClient[Any, Any],
) -> None:
    for name in _chunks():
        response = await client.get(f"/{name}", headers={"Origin": DENIED})
        assert response.status == 403, name
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Origin" in response.headers["Vary"]
        error = await error_of(response)
        assert error["code"] == "origin_not_allowed"
        assert "CE_ALLOWED_ORIGINS" in error["message"]


@pytest.mark.parametrize(
    "path", ["/embed/nothing.js", "/embed/..%2fembed.js", "/embed/meta.json", "/embed/x.py"]
)
async def test_only_the_builds_chunks_are_served(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path, headers={"Origin": ALLOWED})
    assert response.status == 404
    assert (await error_of(response))["code"] == "not_found"


async def test_a_preflight_is_answered_by_the_origin_policy(client: TestClient[Any, Any]) -> None:
    chunk = _chunks()[0]
    for path in ("/embed.js", f"/{chunk}"):
        allowed = await client.options(
            path, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
        )
        assert allowed.status == 204, path
        assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "GET" in allowed.headers["Access-Control-Allow-Methods"]
        denied = await client.options(
            path, headers={"Origin": DENIED, "Access-Control-Request-Method": "GET"}
        )
        assert denied.status == 403, path
        assert "Access-Control-Allow-Origin" not in denied.headers
        assert (await error_of(denied))["code"] == "origin_not_allowed"


async def test_browsers_that_accept_gzip_get_the_gzipped_copy(
    client: TestClient[Any, Any],
) -> None:
    response = await client.get(
        "/embed.js", headers={"Origin": ALLOWED, "Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert await response.read() == (WIDGET_DIR / "embed.js.gz").read_bytes()


async def test_the_rest_of_the_server_still_refuses_framing_and_cors(
    client: TestClient[Any, Any],
) -> None:
    for path in ("/", "/static/dist/app.js", "/embed.js"):
        response = await client.get(path, headers={"Origin": ALLOWED})
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    page = await client.get("/", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in page.headers
