"""The playground page end to end: real browser, real server, real containers."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json

from playwright.async_api import Page, WebSocket, expect

from tests.browser.conftest import ARTIFACTS, OpenPage, running_server
from tests.browser.playground import (
    CLIPBOARD_AND_TITLE_ATTACK,
    LINK_ATTACK,
    check_links_are_guarded,
    choose_language,
    editor_text,
    refuse_dialogs,
    replace_code,
    terminal_text,
    wait_for_status,
    wait_for_terminal,
    wait_until_idle,
    wait_until_ready,
)
from tests.helpers import free_port, seconds_since
from tests.leftovers import TEST_SERVER_ID

INFINITE_LOOP = 'print("looping", flush=True)\nwhile True:\n    pass\n'


async def test_python_program_reads_a_name_typed_into_the_terminal(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "python")
    await replace_code(page, 'name = input("Name? ")\nprint(f"Hello, {name}")', typed=True)

    await page.click("#run")
    await wait_for_terminal(page, "Name? ")
    # Run moved the focus to the terminal: plain typing reaches the program.
    await page.keyboard.type("Ada")
    await page.keyboard.press("Enter")

    await wait_for_terminal(page, "Hello, Ada")
    await wait_for_status(page, "exited 0")
    await expect(page.locator("#limits")).to_contain_text("MiB")


async def test_ctrl_c_typed_into_the_terminal_interrupts_an_endless_loop(
    open_page: OpenPage,
) -> None:
    page = await open_page(color_scheme="dark")
    await wait_until_ready(page)
    await choose_language(page, "python")
    await replace_code(page, INFINITE_LOOP)

    await page.click("#run")
    await wait_for_terminal(page, "looping")
    await page.keyboard.press("Control+c")

    await wait_for_terminal(page, "KeyboardInterrupt")
    await wait_until_idle(page)
    status = await page.locator("#status").inner_text()
    assert "exited" in status
    assert "exited 0" not in status


async def test_stop_button_kills_an_endless_loop(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "python")
    await replace_code(page, INFINITE_LOOP)

    await page.click("#run")
    await wait_for_terminal(page, "looping")
    await page.click("#stop")

    await wait_for_status(page, "killed")
    await wait_until_idle(page)


def answers_to_prepare(page: Page) -> tuple[list[dict[str, object]], asyncio.Event]:
    """Every `prepared` the page's socket receives from now on; set at the first `ready`."""
    answers: list[dict[str, object]] = []
    ready = asyncio.Event()

    def watch(socket: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            if isinstance(payload, str) and '"prepared"' in payload:
                answers.append(json.loads(payload))
                if answers[-1].get("outcome") == "ready":
                    ready.set()

        socket.on("framereceived", received)

    page.on("websocket", watch)
    return answers, ready


async def test_cpp_is_compiled_while_its_author_pauses_and_run_skips_the_compile(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    answers, ready = answers_to_prepare(page)
    await wait_until_ready(page)
    await choose_language(page, "cpp")
    await replace_code(
        page,
        "#include <bits/stdc++.h>\n"
        'int main() { std::cout << "compiled at " << __TIME__ << std::endl; }\n',
    )
    await asyncio.wait_for(ready.wait(), timeout=30)  # no Run pressed yet
    assert answers[-1] == {
        "type": "prepared", "language": "cpp", "outcome": "ready", "id": answers[-1]["id"],
    }, answers  # fmt: skip
    assert str(answers[-1]["id"]).startswith("prepare-"), answers
    await asyncio.sleep(1.1)  # a compile now would print a later time
    pressed_at = datetime.datetime.now()
    await page.click("#run")
    await wait_until_idle(page)
    text = await terminal_text(page)
    stamp = text.rsplit("compiled at ", 1)[1][:8]
    assert 1 <= seconds_since(stamp, pressed_at) <= 60, (stamp, pressed_at, text)


async def test_an_edit_of_an_extra_file_compiles_the_program_again_while_its_author_pauses(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    sent: list[dict[str, object]] = []  # the prepares the page sent
    ready: list[dict[str, object]] = []  # the prepares the server had ready
    answered = asyncio.Event()

    def watch(socket: WebSocket) -> None:
        def frame_sent(payload: str | bytes) -> None:
            if isinstance(payload, str) and '"prepare"' in payload:
                sent.append(json.loads(payload))

        def frame_received(payload: str | bytes) -> None:
            if isinstance(payload, str) and '"prepared"' in payload:
                if json.loads(payload)["outcome"] == "ready":
                    ready.append(sent[-1])
                answered.set()

        socket.on("framesent", frame_sent)
        socket.on("framereceived", frame_received)

    page.on("websocket", watch)
    await wait_until_ready(page)
    await choose_language(page, "c")
    await replace_code(
        page, '#include <stdio.h>\n#include "greeting.h"\nint main(void) { puts(GREETING); }\n'
    )
    await page.click(".run-options summary")
    await page.click("#file-add")
    await page.fill("#file-name", "greeting.h")
    for header in ('#define GREETING "hello"\n', '#define GREETING "again"\n'):
        await asyncio.sleep(1.5)  # past the page's pause: what is sent next, the edit asked for
        await page.fill("#file-content", header)
        wanted = {"name": "greeting.h", "content": header}
        async with asyncio.timeout(30):  # no Run pressed: the edit alone sends a prepare
            while not any(wanted in program["files"] for program in ready):  # type: ignore[operator]
                await answered.wait()
                answered.clear()
    await page.click("#run")
    await wait_for_status(page, "exited 0")
    assert "again" in await terminal_text(page)


async def test_c_compile_error_shows_the_compiler_message(open_page: OpenPage) -> None:
    page = await open_page(color_scheme="dark")
    await wait_until_ready(page)
    await choose_language(page, "c")
    await replace_code(
        page,
        "#include <stdio.h>\n\nint main(void) {\n    return undefined_name;\n}\n",
    )

    await page.click("#run")

    await wait_for_status(page, "compile_error")
    assert "undefined_name" in await terminal_text(page)
    assert "undeclared" in await terminal_text(page)


async def test_program_cannot_set_the_clipboard_or_the_page_title(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    title = await page.title()
    await page.evaluate("navigator.clipboard.writeText('left alone')")
    await choose_language(page, "python")
    await replace_code(page, CLIPBOARD_AND_TITLE_ATTACK)

    await page.click("#run")
    await wait_for_terminal(page, "sequences sent")
    await wait_for_status(page, "exited 0")

    assert await page.evaluate("navigator.clipboard.readText()") == "left alone"
    assert await page.title() == title
    assert "pwned" not in await terminal_text(page)


async def test_program_output_cannot_forge_the_status_line(open_page: OpenPage) -> None:
    page = await open_page(color_scheme="dark")
    await wait_until_ready(page)
    await choose_language(page, "python")
    await replace_code(page, 'print("exited 0 · 1 ms · 1 MiB")\nraise SystemExit(3)\n')

    await page.click("#run")

    await wait_for_status(page, "exited 3")
    assert "exited 0" not in await page.locator("#status").inner_text()


async def test_share_link_reproduces_the_snippet_in_a_new_page(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    code = 'puts "héllo, wörld ✓"\n# shared & saved: 100%\n'
    await choose_language(page, "ruby")
    await replace_code(page, code)

    await page.click("#share")
    link_field = page.locator("#share-url")
    await expect(link_field).to_be_visible()
    link = await link_field.input_value()
    assert "#" in link

    copy = await open_page(link, color_scheme="dark")
    await wait_until_ready(copy)
    await expect(copy.locator("#language")).to_have_value("ruby")
    assert await editor_text(copy) == code


async def test_terminal_links_open_only_http_and_only_after_confirmation(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    await wait_until_ready(page)
    prompts = refuse_dialogs(page)
    await choose_language(page, "python")
    await replace_code(page, LINK_ATTACK)
    await page.click("#run")
    await wait_for_status(page, "exited 0")
    await check_links_are_guarded(page, prompts)


async def test_switching_language_loads_its_example_until_the_code_is_edited(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "python")
    await page.select_option("#example", "input")
    assert "input(" in await editor_text(page)

    await choose_language(page, "ruby")
    assert "gets" in await editor_text(page)  # the same kind of example, in Ruby

    await replace_code(page, "puts 42\n")
    await choose_language(page, "bash")
    assert await editor_text(page) == "puts 42\n"


async def test_a_dropped_connection_says_so_and_reconnects(
    open_page: OpenPage, page_assets: None
) -> None:
    port, server_id = free_port(), f"{TEST_SERVER_ID}-browser-restart"
    with contextlib.ExitStack() as servers:
        url = await asyncio.to_thread(
            servers.enter_context, running_server(port, server_id, CE_POOL__ENABLED="false")
        )
        page = await open_page(f"{url}/")
        await wait_until_ready(page)
        await choose_language(page, "python")
        await replace_code(page, 'input("Waiting: ")')
        await page.click("#run")
        await wait_for_terminal(page, "Waiting: ")

        await asyncio.to_thread(servers.close)  # the server goes away mid-run
        banner = page.locator("#connection")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Connection to the server lost")
        await expect(page.locator("#run")).to_be_disabled()

        await asyncio.to_thread(
            servers.enter_context, running_server(port, server_id, CE_POOL__ENABLED="false")
        )
        await wait_until_ready(page)
        await expect(banner).to_be_hidden()
        await replace_code(page, 'print("back again")')
        await page.click("#run")
        await wait_for_terminal(page, "back again")
        await wait_for_status(page, "exited 0")
        # The teardown screenshot comes after this server stopped too.
        await page.screenshot(path=ARTIFACTS / "test_a_dropped_connection_reconnected.png")
