"""Codapi's own widget, unchanged from npm, on a page of another origin than the server's.

The page is served from other loopback addresses (127.0.0.2 is allowed by the
server's `CE_ALLOWED_ORIGINS`, 127.0.0.3 is not) and points the widget at the
real server's `/codapi/v1`; Debian's Chromium runs it, so the CORS answers
are the browser's to judge.
"""

from __future__ import annotations

import contextlib
import html
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect

from tests.browser.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, ROOT, running_server
from tests.conftest import SpecRecorder
from tests.helpers import free_port
from tests.integration.rest import named, parse_metrics
from tests.leftovers import TEST_SERVER_ID

WIDGET = ROOT / "node_modules" / "@antonz" / "codapi" / "dist"
ALLOWED_HOST = "127.0.0.2"
DENIED_HOST = "127.0.0.3"
RESULT_TIMEOUT_MS = 30_000
PYTHON_SNIPPET = 'print("hello from", "codapi")'
C_SNIPPET = "int main(void) { return undefined_name; }"


@dataclass(frozen=True)
class Origins:
    server: str
    allowed: str
    denied: str


def _page(server: str) -> str:
    """A documentation page as Codapi's own docs write it: code blocks, each with a snippet."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Codapi widget</title>
<link rel="stylesheet" href="/codapi/snippet.css"></head><body>
<codapi-settings url="{html.escape(server)}/codapi/v1"></codapi-settings>
<pre><code>{html.escape(PYTHON_SNIPPET)}</code></pre>
<codapi-snippet id="python" sandbox="python" editor="basic"></codapi-snippet>
<pre><code>{html.escape(C_SNIPPET)}</code></pre>
<codapi-snippet id="c" sandbox="c" editor="basic"></codapi-snippet>
<script src="/codapi/snippet.js"></script>
</body></html>"""


@pytest.fixture(scope="module")
def origins(page_assets: None, engine_session: SpecRecorder) -> Iterator[Origins]:
    """The real server, allowing the page's origin on 127.0.0.2 (and not 127.0.0.3's)."""
    page_port = free_port()
    allowed, denied = f"http://{ALLOWED_HOST}:{page_port}", f"http://{DENIED_HOST}:{page_port}"
    server_id = f"{TEST_SERVER_ID}-browser-codapi"
    with running_server(free_port(), server_id, CE_ALLOWED_ORIGINS=json.dumps([allowed])) as server:
        yield Origins(server, allowed, denied)


@pytest.fixture
async def page_servers(origins: Origins) -> AsyncIterator[None]:
    """The page and the widget's files, as any static host would serve them, on both origins."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=_page(origins.server), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_static("/codapi/", WIDGET)
    runner = web.AppRunner(app)
    await runner.setup()
    for origin in (origins.allowed, origins.denied):
        host, port = origin.removeprefix("http://").split(":")
        await web.TCPSite(runner, host, int(port)).start()
    try:
        yield
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser_page(page_servers: None, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh headless Chromium page, saved as a screenshot at the end."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1000, "height": 600})
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            with contextlib.suppress(Exception):
                await page.screenshot(path=ARTIFACTS / f"{request.node.name}.png")
            await browser.close()


async def _runs_so_far(server: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{server}/metrics") as response:
        samples = parse_metrics(await response.text())
    # Both counters appear with their first run or refusal: none yet is none.
    refusals = frozenset({("reason", "origin_not_allowed")})
    return sum(named(samples, "ce_runs_total")) + samples.get(
        ("ce_runs_rejected_total", refusals), 0.0
    )


async def _run(page: Page, snippet: str) -> None:
    await page.locator(f"#{snippet} codapi-toolbar button").click()


async def test_run_shows_the_programs_output(browser_page: Page, origins: Origins) -> None:
    await browser_page.goto(origins.allowed)
    await _run(browser_page, "python")
    output = browser_page.locator("#python codapi-output")
    await expect(output).to_contain_text("hello from codapi", timeout=RESULT_TIMEOUT_MS)
    await expect(browser_page.locator("#python codapi-status")).to_contain_text("Done")


async def test_an_edited_snippet_runs_as_edited(browser_page: Page, origins: Origins) -> None:
    await browser_page.goto(origins.allowed)
    code = browser_page.locator("pre code").first
    await code.click()
    await browser_page.keyboard.press("Control+A")
    await browser_page.keyboard.type("print(6 * 7)")
    await _run(browser_page, "python")
    output = browser_page.locator("#python codapi-output")
    await expect(output).to_contain_text("42", timeout=RESULT_TIMEOUT_MS)


async def test_a_c_compile_error_shows_as_failed_with_the_compiler_message(
    browser_page: Page, origins: Origins
) -> None:
    await browser_page.goto(origins.allowed)
    await _run(browser_page, "c")
    output = browser_page.locator("#c codapi-output")
    await expect(output).to_contain_text("undefined_name", timeout=RESULT_TIMEOUT_MS)
    await expect(browser_page.locator("#c codapi-status")).to_contain_text("Failed")


async def test_a_page_of_an_origin_not_allowed_cannot_run(
    browser_page: Page, origins: Origins
) -> None:
    before = await _runs_so_far(origins.server)
    refused: list[str] = []
    browser_page.on("console", lambda message: refused.append(message.text))
    await browser_page.goto(origins.denied)
    await _run(browser_page, "python")
    output = browser_page.locator("#python codapi-output")
    await expect(output).to_contain_text("request failed", timeout=RESULT_TIMEOUT_MS)
    await expect(browser_page.locator("#python codapi-status")).to_contain_text("Failed")
    assert any("CORS" in text for text in refused), refused
    # The browser's preflight was refused: the run itself was never even asked for.
    assert await _runs_so_far(origins.server) == before
