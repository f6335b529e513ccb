"""Codapi's own widget, unchanged from npm, on a page of another origin than the server's.

The page is served from other loopback addresses (127.0.0.2 is allowed by the
server's `CE_ALLOWED_ORIGINS`, 127.0.0.3 is not) and points the widget at the
real server's `/codapi/v1`; Debian's Chromium runs it, so the CORS answers
are the browser's to judge.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from tests.browser.conftest import ROOT
from tests.browser.origins import (
    Origins,
    chromium_page,
    served_on_both_origins,
    server_allowing_one_origin,
)
from tests.conftest import SpecRecorder
from tests.integration.rest import named, parse_metrics

WIDGET = ROOT / "node_modules" / "@antonz" / "codapi" / "dist"
RESULT_TIMEOUT_MS = 30_000
PYTHON_SNIPPET = 'print("hello from", "codapi")'
C_SNIPPET = "int main(void) { return undefined_name; }"


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
    with server_allowing_one_origin("codapi") as origins:
        yield origins


@pytest.fixture
async def page_servers(origins: Origins) -> AsyncIterator[None]:
    """The page and the widget's files, as any static host would serve them, on both origins."""

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=_page(origins.server), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_static("/codapi/", WIDGET)
    async with served_on_both_origins(app, origins):
        yield


@pytest.fixture
async def browser_page(page_servers: None, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    async with chromium_page(request, viewport={"width": 1000, "height": 600}) as page:
        yield page


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
