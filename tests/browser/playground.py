"""What a person does on the playground page, as Playwright steps."""

from __future__ import annotations

import base64

from playwright.async_api import Dialog, Page, expect
from playwright.async_api import Error as PlaywrightError

# The first run may wait for a container to start; compiling C takes a moment.
RUN_TIMEOUT_MS = 60_000

#: Python that asks the terminal to write the clipboard (OSC 52) and the page
#: title (OSC 0), then says "sequences sent": neither may happen.
CLIPBOARD_AND_TITLE_ATTACK = (
    "import sys\n"
    f'sys.stdout.write("\\x1b]52;c;{base64.b64encode(b"pwned clipboard").decode()}\\x07")\n'
    'sys.stdout.write("\\x1b]0;pwned\\x07")\n'
    'print("sequences sent")\n'
)
#: Python that prints a `javascript:` OSC 8 link (SCRIPT-LINK) and a web one (WEB-LINK).
LINK_ATTACK = (
    'print("\\x1b]8;;javascript:alert(1)\\x07SCRIPT-LINK\\x1b]8;;\\x07")\n'
    'print("\\x1b]8;;https://example.com/page\\x07WEB-LINK\\x1b]8;;\\x07")\n'
)


async def wait_until_ready(page: Page) -> None:
    """The server said `hello`: languages are listed and Run is enabled."""
    await expect(page.locator("#run")).to_be_enabled(timeout=RUN_TIMEOUT_MS)


async def choose_language(page: Page, language: str) -> None:
    await page.select_option("#language", language)


async def replace_code(page: Page, code: str, *, typed: bool = False) -> None:
    """Replace the editor's text: typed key by key, or pasted in one go.

    Typing goes through the editor's auto-indent and bracket closing, so only
    single-level code is typed; multi-line programs are inserted.
    """
    await page.locator(".cm-content").click()
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.press("Delete")
    if typed:
        await page.keyboard.type(code)
    else:
        await page.keyboard.insert_text(code)


async def editor_text(page: Page) -> str:
    """The editor's document, line by line as rendered (fine for short snippets)."""
    lines = await page.locator(".cm-content .cm-line").all_text_contents()
    return "\n".join(lines)


async def terminal_text(page: Page) -> str:
    text: str = await page.evaluate("window.__ceTerminalText()")
    return text


async def screen(page: Page) -> str:
    """What the person sees, for failure messages: status line and terminal."""
    status = await page.locator("#status").inner_text()
    return f"status: {status!r}\nterminal:\n{await terminal_text(page)}"


async def wait_for_terminal(page: Page, text: str) -> None:
    try:
        await page.wait_for_function(
            "text => window.__ceTerminalText().includes(text)", arg=text, timeout=RUN_TIMEOUT_MS
        )
    except PlaywrightError as error:
        raise AssertionError(f"terminal never showed {text!r}\n{await screen(page)}") from error


async def wait_for_status(page: Page, text: str) -> None:
    try:
        await expect(page.locator("#status")).to_contain_text(text, timeout=RUN_TIMEOUT_MS)
    except AssertionError as error:
        raise AssertionError(f"status never showed {text!r}\n{await screen(page)}") from error


async def wait_until_idle(page: Page) -> None:
    """The run is over: Run is enabled again and Stop is not."""
    await expect(page.locator("#run")).to_be_enabled(timeout=RUN_TIMEOUT_MS)
    await expect(page.locator("#stop")).to_be_disabled()


async def click_terminal_text(page: Page, text: str) -> None:
    """Click the start of the rendered terminal row showing `text`, as a mouse would.

    Rows ignore pointer events (xterm's screen above them takes them), so this
    goes by the row's position; the hover first lets xterm find the link.
    """
    box = await page.locator(".xterm-rows > div", has_text=text).bounding_box()
    assert box is not None, f"no terminal row shows {text!r}"
    x, y = box["x"] + 20, box["y"] + box["height"] / 2
    await page.mouse.move(x, y)
    await page.mouse.click(x, y)


def refuse_dialogs(page: Page) -> list[str]:
    """Dismiss every dialog the page opens; the list fills with their messages."""
    prompts: list[str] = []

    async def refuse(dialog: Dialog) -> None:
        prompts.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", refuse)
    return prompts


async def check_links_are_guarded(page: Page, prompts: list[str]) -> None:
    """After LINK_ATTACK ran: the `javascript:` link does nothing, the web link only asks."""
    await click_terminal_text(page, "SCRIPT-LINK")
    async with page.expect_event("dialog"):
        await click_terminal_text(page, "WEB-LINK")
    assert len(prompts) == 1  # the javascript: link asked nothing and did nothing
    assert "https://example.com/page" in prompts[0]
    assert len(page.context.pages) == 1  # refused: nothing opened
