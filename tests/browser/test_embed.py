"""The embed widget on a course page of another origin: real Chromium, real server, real runs.

The page is served by a small static server on other loopback addresses
(127.0.0.2 is in the server's `CE_ALLOWED_ORIGINS`, 127.0.0.3 is not) and
loads `{server}/embed.js` as a page author would; the browser judges the CORS
answers and the WebSocket's origin check.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Request, WebSocket, expect

from tests.browser.origins import (
    Origins,
    chromium_page,
    served_on_both_origins,
    server_allowing_one_origin,
)
from tests.conftest import SpecRecorder
from tests.helpers import free_port

# The first run may wait for a container to start; compiling C takes a moment.
RUN_TIMEOUT_MS = 60_000

GREET = 'print("Hello, " + input("name? ") + "!")'
C_GREET = """#include <stdio.h>

int main(void) {
    char name[64];
    printf("who? ");
    fflush(stdout);
    if (scanf("%63s", name) != 1) return 1;
    printf("C greets %s\\n", name);
    return 3;
}"""
SIZE = """import os
print("cols", os.get_terminal_size().columns, flush=True)
input()
print("cols", os.get_terminal_size().columns)"""
HOSTILE = """import base64, sys
sys.stdout.write("\\x1b]52;c;" + base64.b64encode(b"pwned clipboard").decode() + "\\x07")
sys.stdout.write("\\x1b]0;pwned\\x07")
print("exited 0 (forged)")"""
EDITABLE = "print(6 * 7)"
EDITED = 'print(input("word? ") * 2)'
# Short sleeps: Ctrl-C landing between the print and a long sleep's system call
# would wait for that sleep (CPython checks its handlers between calls).
SLEEPER = """import time
print("ticking", flush=True)
try:
    for _ in range(12000):
        time.sleep(0.05)
except KeyboardInterrupt:
    print("caught Ctrl-C")"""


def _snippet(snippet_id: str, language: str, code: str, *attributes: str) -> str:
    extra = "".join(f" {attribute}" for attribute in attributes)
    return (
        f'<ce-snippet id="{snippet_id}" language="{language}"{extra}>'
        f"{html.escape(code)}</ce-snippet>"
    )


def _page(server: str, *snippets: str) -> str:
    """A course page: the script tag, the snippets, and a listener keeping every `ce-exit`."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Course page</title>
<script type="module" src="{html.escape(server)}/embed.js"></script>
<style>button {{ color: rgb(255, 0, 0); }}</style>
</head><body>
<h1>Lesson 1</h1>
{"".join(snippets)}
<script>
window.exits = [];
document.addEventListener('ce-exit', (event) => window.exits.push({{id: event.target.id, detail: event.detail}}));
</script>
</body></html>"""


@pytest.fixture(scope="module")
def origins(page_assets: None, engine_session: SpecRecorder) -> Iterator[Origins]:
    with server_allowing_one_origin("embed") as origins:
        yield origins


@pytest.fixture
async def page_server(origins: Origins) -> AsyncIterator[None]:
    """The course pages, as any static host would serve them, on both origins."""
    pages = {
        "/": _page(
            origins.server,
            _snippet("greet", "python", GREET),
            _snippet("c", "c", C_GREET, 'rows="8"'),
            _snippet("edit", "python", EDITABLE, "editable"),
        ),
        "/controls": _page(
            origins.server,
            _snippet("sleeper", "python", SLEEPER),
            _snippet("size", "python", SIZE),
            _snippet("hostile", "python", HOSTILE),
            # A server that is not there: nothing listens on this port.
            _snippet("gone", "python", GREET, f'server="http://127.0.0.1:{free_port()}"'),
        ),
    }

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.path], content_type="text/html")

    app = web.Application()
    for path in pages:
        app.router.add_get(path, page)
    async with served_on_both_origins(app, origins):
        yield


@pytest.fixture
async def browser_page(page_server: None, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    async with chromium_page(
        request,
        full_page=True,
        viewport={"width": 1000, "height": 900},
        color_scheme=getattr(request, "param", "light"),
        permissions=["clipboard-read", "clipboard-write"],
    ) as page:
        yield page


def _sockets(page: Page) -> list[WebSocket]:
    """Every WebSocket the page opens from now on."""
    opened: list[WebSocket] = []

    def keep(socket: WebSocket) -> None:
        opened.append(socket)

    page.on("websocket", keep)
    return opened


async def _output(page: Page, snippet: str) -> str:
    text: str = await page.evaluate("id => document.getElementById(id).output", snippet)
    return text


async def _wait_for_output(page: Page, snippet: str, text: str) -> None:
    try:
        await page.wait_for_function(
            "([id, text]) => document.getElementById(id).output.includes(text)",
            arg=[snippet, text],
            timeout=RUN_TIMEOUT_MS,
        )
    except PlaywrightError as error:
        outcome = await page.locator(f"#{snippet} .outcome").text_content()
        seen = await _output(page, snippet)
        raise AssertionError(f"{snippet} never showed {text!r}: {seen!r}, {outcome!r}") from error


async def _run(page: Page, snippet: str) -> None:
    await page.locator(f"#{snippet}").get_by_role("button", name="Run", exact=True).click()


async def _exits(page: Page) -> list[dict[str, Any]]:
    exits: list[dict[str, Any]] = await page.evaluate("window.exits")
    return exits


async def _wait_for_exit(page: Page, snippet: str) -> dict[str, Any]:
    await page.wait_for_function(
        "id => window.exits.some((exit) => exit.id === id)", arg=snippet, timeout=RUN_TIMEOUT_MS
    )
    return next(exit["detail"] for exit in await _exits(page) if exit["id"] == snippet)


async def test_a_python_snippet_reads_typed_input_and_reports_its_exit(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    sockets = _sockets(page)
    await page.goto(origins.allowed)
    await expect(page.locator("#greet pre")).to_have_text(GREET)
    assert sockets == []  # nothing connects before a Run

    await _run(page, "greet")
    await _wait_for_output(page, "greet", "name? ")
    # Run moved the focus to the terminal: plain typing reaches the program.
    await page.keyboard.type("Ada")
    await page.keyboard.press("Enter")
    await _wait_for_output(page, "greet", "Hello, Ada!")

    exit_message = await _wait_for_exit(page, "greet")
    assert exit_message["type"] == "exit"
    assert (exit_message["status"], exit_message["exit_code"]) == ("exited", 0)
    await expect(page.locator("#greet .outcome")).to_contain_text(
        "The program finished successfully (exit code 0)"
    )
    assert "name? Ada\r\nHello, Ada!" in (await _output(page, "greet")).replace("\n", "\r\n")
    # One connection, this snippet's; the others never connected.
    assert len(sockets) == 1 and sockets[0].url.startswith(origins.server.replace("http", "ws"))


async def test_a_c_snippet_compiles_reads_input_and_reports_its_exit_code(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    await page.goto(origins.allowed)
    await expect(page.locator("#c pre")).to_have_text(C_GREET)  # `<stdio.h>` escaped by the page
    await _run(page, "c")
    await _wait_for_output(page, "c", "who? ")
    await page.keyboard.type("Grace")
    await page.keyboard.press("Enter")
    await _wait_for_output(page, "c", "C greets Grace")

    exit_message = await _wait_for_exit(page, "c")
    assert (exit_message["status"], exit_message["exit_code"]) == ("exited", 3)
    await expect(page.locator("#c .outcome")).to_contain_text(
        "The program finished with exit code 3"
    )
    # rows="8": the terminal the program ran in had 8 rows.
    rows = await page.evaluate(
        "() => document.getElementById('c').shadowRoot.querySelector('.xterm-rows').children.length"
    )
    assert rows == 8


async def test_an_editable_snippet_runs_as_edited(browser_page: Page, origins: Origins) -> None:
    page = browser_page
    await page.goto(origins.allowed)
    editor = page.locator("#edit .cm-content")
    await expect(editor).to_have_text(EDITABLE)
    await editor.click()
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type(EDITED)
    await expect(editor).to_have_text(EDITED)

    await _run(page, "edit")
    await _wait_for_output(page, "edit", "word? ")
    await page.keyboard.type("ab")
    await page.keyboard.press("Enter")
    await _wait_for_output(page, "edit", "abab")
    assert "42" not in await _output(page, "edit")
    assert (await _wait_for_exit(page, "edit"))["status"] == "exited"
    await expect(page.locator("#edit .outcome")).to_contain_text("finished successfully")


async def test_the_terminal_loads_only_on_the_first_run(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    requested: list[str] = []

    def keep(request: Request) -> None:
        requested.append(request.url)

    page.on("request", keep)
    await page.goto(origins.allowed)
    await expect(page.locator("#edit .cm-content")).to_be_visible()  # the editor chunk is in
    assert not any("/embed/terminal-" in url for url in requested), requested
    assert await _output(page, "greet") == ""

    await _run(page, "greet")
    await _wait_for_output(page, "greet", "name? ")
    assert any("/embed/terminal-" in url for url in requested), requested
    await page.keyboard.press("Enter")
    await _wait_for_exit(page, "greet")


async def test_output_is_read_only(browser_page: Page, origins: Origins) -> None:
    await browser_page.goto(origins.allowed)
    await expect(browser_page.locator("#greet pre")).to_be_visible()
    answer = await browser_page.evaluate(
        """() => {
            'use strict';
            try { document.getElementById('greet').output = 'forged'; return 'assigned'; }
            catch (error) { return error.constructor.name; }
        }"""
    )
    assert answer == "TypeError"
    assert await _output(browser_page, "greet") == ""


async def test_the_pages_styles_do_not_reach_into_the_snippet(
    browser_page: Page, origins: Origins
) -> None:
    await browser_page.goto(origins.allowed)
    run = browser_page.locator("#greet").get_by_role("button", name="Run", exact=True)
    await expect(run).to_be_visible()
    colour = await run.evaluate("button => getComputedStyle(button).color")
    assert colour != "rgb(255, 0, 0)"


@pytest.mark.parametrize("browser_page", ["dark"], indirect=True)
async def test_a_dark_page_gets_the_dark_terminal(browser_page: Page, origins: Origins) -> None:
    page = browser_page
    await page.goto(origins.allowed)
    await _run(page, "greet")
    await _wait_for_output(page, "greet", "name? ")
    background = await page.evaluate(
        """() => getComputedStyle(document.getElementById('greet').shadowRoot
             .querySelector('.xterm-viewport')).backgroundColor"""
    )
    assert background == "rgb(15, 18, 22)"  # --term-bg of the dark scheme
    await page.keyboard.press("Enter")
    await _wait_for_exit(page, "greet")


async def test_ctrl_c_reaches_the_program_and_stop_ends_the_run(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    await page.goto(f"{origins.allowed}/controls")
    stop = page.locator("#sleeper").get_by_role("button", name="Stop", exact=True)
    await expect(stop).to_be_hidden()

    await _run(page, "sleeper")
    await _wait_for_output(page, "sleeper", "ticking")
    await page.keyboard.press("Control+c")
    await _wait_for_output(page, "sleeper", "caught Ctrl-C")
    assert (await _wait_for_exit(page, "sleeper"))["status"] == "exited"

    await page.evaluate("window.exits = []")
    await _run(page, "sleeper")
    await _wait_for_output(page, "sleeper", "ticking")
    await expect(stop).to_be_visible()
    await stop.click()
    assert (await _wait_for_exit(page, "sleeper"))["status"] == "killed"
    await expect(page.locator("#sleeper .outcome")).to_contain_text("Stopped.")
    await expect(stop).to_be_hidden()


async def test_a_page_of_an_origin_not_allowed_is_told_so_in_each_snippet(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    sockets = _sockets(page)
    await page.goto(origins.denied)
    for snippet in ("greet", "c", "edit"):
        message = page.locator(f"#{snippet}").get_by_role("alert")
        await expect(message).to_contain_text(f"does not allow pages of {origins.denied}")
        await expect(message).to_contain_text("CE_ALLOWED_ORIGINS")
    await expect(page.locator("#greet pre")).to_have_text(GREET)  # the code still shows
    assert await page.locator("#greet").get_by_role("button", name="Run").count() == 0
    assert sockets == []


async def test_a_server_that_cannot_be_reached_is_told_in_the_snippet(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    await page.goto(f"{origins.allowed}/controls")
    await _run(page, "gone")
    outcome = page.locator("#gone .outcome")
    await expect(outcome).to_contain_text(
        "Could not connect to the Code Executor at http://127.0.0.1:"
    )
    await expect(outcome).to_contain_text("CE_ALLOWED_ORIGINS")
    run = page.locator("#gone").get_by_role("button", name="Run", exact=True)
    await expect(run).to_be_enabled()  # it may be tried again


async def test_a_narrower_snippet_resizes_the_programs_terminal(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    await page.goto(f"{origins.allowed}/controls")
    await _run(page, "size")
    await _wait_for_output(page, "size", "cols ")
    wide = int((await _output(page, "size")).split()[1])
    await page.set_viewport_size({"width": 600, "height": 900})
    await page.wait_for_function(
        "() => document.getElementById('size').shadowRoot.querySelector('.terminal')"
        ".clientWidth < 600"
    )
    await page.wait_for_timeout(500)  # the terminal refits after a short debounce
    await page.keyboard.press("Enter")
    await _wait_for_exit(page, "size")
    narrow = int((await _output(page, "size")).split()[-1])
    assert narrow < wide, await _output(page, "size")


async def test_a_program_cannot_set_the_clipboard_or_the_title_or_forge_the_outcome(
    browser_page: Page, origins: Origins
) -> None:
    page = browser_page
    await page.goto(f"{origins.allowed}/controls")
    title = await page.title()
    await page.evaluate("navigator.clipboard.writeText('left alone')")
    await _run(page, "hostile")
    await _wait_for_output(page, "hostile", "(forged)")
    await _wait_for_exit(page, "hostile")

    assert await page.evaluate("navigator.clipboard.readText()") == "left alone"
    assert await page.title() == title
    assert "pwned" not in await _output(page, "hostile")
    await expect(page.locator("#hostile .outcome")).to_have_text(
        re.compile(r"^The program finished successfully \(exit code 0\)")
    )
