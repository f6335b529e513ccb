"""A page of another origin than the server's, as a course page or a Codapi page is.

The page is served by a small static server on other loopback addresses:
127.0.0.2 is in the server's `CE_ALLOWED_ORIGINS`, 127.0.0.3 is not, so
the browser judges the CORS answers and the WebSocket's origin check.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, running_server
from tests.helpers import free_port
from tests.leftovers import TEST_SERVER_ID

ALLOWED_HOST = "127.0.0.2"
DENIED_HOST = "127.0.0.3"


@dataclass(frozen=True)
class Origins:
    server: str
    allowed: str
    denied: str


@contextlib.contextmanager
def server_allowing_one_origin(name: str) -> Iterator[Origins]:
    """The real server (its id ends in `name`), allowing the page's origin on 127.0.0.2 only."""
    page_port = free_port()
    allowed, denied = f"http://{ALLOWED_HOST}:{page_port}", f"http://{DENIED_HOST}:{page_port}"
    server_id = f"{TEST_SERVER_ID}-browser-{name}"
    with running_server(free_port(), server_id, CE_ALLOWED_ORIGINS=json.dumps([allowed])) as server:
        yield Origins(server, allowed, denied)


@contextlib.asynccontextmanager
async def served_on_both_origins(app: web.Application, origins: Origins) -> AsyncIterator[None]:
    """`app` (the static pages) on the allowed and the denied origin, until the block ends."""
    runner = web.AppRunner(app)
    await runner.setup()
    for origin in (origins.allowed, origins.denied):
        host, port = origin.removeprefix("http://").split(":")
        await web.TCPSite(runner, host, int(port)).start()
    try:
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def chromium_page(
    request: pytest.FixtureRequest, *, full_page: bool = False, **options: Any
) -> AsyncIterator[Page]:
    """A fresh headless Chromium page, saved as artifacts/<test name>.png at the end."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page(**options)
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):
                await page.screenshot(
                    path=ARTIFACTS / f"{request.node.name}.png", full_page=full_page
                )
            await browser.close()
