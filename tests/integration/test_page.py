"""The pages (playground, watch, replay) are served locally with hardening headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient

#: Well formed, but no room or recording has it.
UNKNOWN_ID = "Zm9vYmFyYmF6cXV4cXV1eA"


@dataclass(frozen=True)
class Pages:
    """A server with an open room and a kept recording, and the paths of their pages."""

    client: TestClient[Any, Any]
    watch: str
    replay: str
    presenter: TermClient


@pytest.fixture
async def pages(make_client: MakeClient, tmp_path: Path) -> AsyncIterator[Pages]:
    client = await make_client(recordings={"dir": str(tmp_path)})
    async with TermClient.connect(client) as presenter:
        await presenter.send(type="share")
        shared = await presenter.next_message("shared")
        exit_message = await presenter.run_to_exit("bash", "echo recorded")
        recording_id = exit_message["recording"].rsplit("/", 1)[1].removesuffix(".cast")
        watch = urlsplit(shared["watch_url"]).path
        yield Pages(client, watch=watch, replay=f"/replay/{recording_id}", presenter=presenter)


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


async def test_pages_load_nothing_from_elsewhere(pages: Pages) -> None:
    for path, bundle in (("/", "app"), (pages.watch, "watch"), (pages.replay, "replay")):
        response = await pages.client.get(path)
        assert response.status == 200, path
        html = await response.text()
        assert "http://" not in html and "https://" not in html, path
        assert f"/static/dist/{bundle}.js" in html and f"/static/dist/{bundle}.css" in html
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_pages_may_compile_webassembly_but_never_evaluate_script(pages: Pages) -> None:
    """The terminal's image addon and asciinema-player bundle WebAssembly; /docs has none."""
    policies = {
        path: (await pages.client.get(path)).headers["Content-Security-Policy"]
        for path in ("/", pages.watch, pages.replay, "/static/index.html", "/docs")
    }
    scripts = {path: "script-src 'self' 'wasm-unsafe-eval';" for path in policies}
    scripts["/docs"] = "script-src 'self';"
    for path, policy in policies.items():
        assert scripts[path] in policy, path
        assert "'unsafe-eval'" not in policy, path
        assert "frame-ancestors 'none'" in policy, path


async def _not_found_page(client: TestClient[Any, Any], path: str) -> bytes:
    """The body of the 404 page `path` gets (asserted to be one)."""
    answer = await _raw_get(client, path)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"404", answer[:300]
    assert b"text/html" in head
    assert b'href="/"' in body  # a way on
    assert b"[project]" not in body and b"<script" not in body
    return body


async def test_a_closed_or_unknown_room_and_a_missing_recording_get_their_own_404_page(
    pages: Pages,
) -> None:
    assert b"This room has ended" in await _not_found_page(pages.client, f"/watch/{UNKNOWN_ID}")
    missing = await _not_found_page(pages.client, f"/replay/{'0' * 32}")
    assert b"not kept any more" in missing

    await pages.presenter.send(type="unshare")
    await pages.presenter.next_message("room_closed")
    assert b"This room has ended" in await _not_found_page(pages.client, pages.watch)


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
    assert b"not valid" in await _not_found_page(client, f"/{page}/{room}")


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
