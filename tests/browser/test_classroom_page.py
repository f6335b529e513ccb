"""The page as a lab tool (issue 17), end to end: real Chromium, server, containers.

Outcomes in plain words in the terminal, compile errors marked in the editor,
type-ahead, the stdin/arguments/files panels, projector mode, inline images,
the touch key bar, a keyboard-only path, and the OpenAPI viewer at /docs.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib

from playwright.async_api import ConsoleMessage, Page, expect

from tests.browser.conftest import OpenPage, running_server
from tests.browser.playground import (
    RUN_TIMEOUT_MS,
    choose_language,
    replace_code,
    terminal_text,
    wait_for_status,
    wait_for_terminal,
    wait_until_idle,
    wait_until_ready,
)
from tests.helpers import free_port
from tests.leftovers import TEST_SERVER_ID


async def run_program(page: Page, language: str, code: str) -> None:
    await wait_until_ready(page)
    await choose_language(page, language)
    await replace_code(page, code)
    await page.click("#run")


async def test_segfault_is_explained_in_plain_words_in_the_terminal(open_page: OpenPage) -> None:
    page = await open_page()
    # The address comes from input so the compiler cannot turn the store into a trap.
    code = (
        "#include <stdlib.h>\n"
        'int main(void) { int *p = (int *)(long)atoi("16"); *p = 1; return 0; }\n'
    )
    await run_program(page, "c", code)
    await wait_for_terminal(
        page, "Segmentation fault — your program read or wrote memory it does not own"
    )
    # The footer keeps the developer's details.
    await wait_for_status(page, "SIGSEGV")


async def test_memory_limit_is_explained_in_plain_words(open_page: OpenPage) -> None:
    page = await open_page()
    await run_program(
        page, "python", "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n"
    )
    await wait_for_terminal(page, "Stopped: used more than 256 MiB of memory")
    await wait_for_status(page, "oom")


async def test_output_cap_is_explained_in_plain_words(open_page: OpenPage) -> None:
    page = await open_page()
    await run_program(page, "python", "while True:\n    print('x' * 1000)\n")
    await wait_for_terminal(page, "Output limit of 1 MiB reached")
    await wait_for_status(page, "output_limit")


async def test_busy_loop_is_stopped_by_its_cpu_time_in_plain_words(open_page: OpenPage) -> None:
    # A short budget of its own: on a loaded machine 10 s of CPU time take minutes of wall time.
    with running_server(free_port(), f"{TEST_SERVER_ID}-cpu", CE_TERMINAL__CPU_MS="3000") as url:
        page = await open_page(url)
        await run_program(page, "python", "while True:\n    pass\n")
        await wait_for_terminal(page, "Stopped after 3 s of CPU time")
        await wait_for_status(page, "timeout: 3 s of CPU time used")


async def test_c_compile_error_is_marked_on_its_line_and_clicking_it_jumps_there(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    code = '#include <stdio.h>\nint main(void) {\n    printf("hi")\n    return 0;\n}\n'
    await run_program(page, "c", code)
    await wait_for_status(page, "compile_error")
    await wait_for_terminal(page, "Did not compile")

    # GCC reports the missing `;` at the end of line 3: the editor marks that spot.
    marked = page.locator(".cm-line", has=page.locator(".cm-lintRange-error, .cm-lintPoint-error"))
    await expect(marked).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    await expect(marked).to_contain_text('printf("hi")')
    await expect(page.locator(".cm-gutter-lint .cm-lint-marker-error")).to_have_count(1)

    problem = page.locator("#problems .problem-error").first
    await expect(problem).to_contain_text("main.c:3:")
    await page.keyboard.press("ControlOrMeta+Home")  # the cursor elsewhere first
    await problem.click()
    await expect(page.locator(".cm-activeLine")).to_contain_text('printf("hi")')
    await expect(page.locator(".cm-content")).to_be_focused()


async def test_a_compile_error_in_an_extra_file_opens_its_tab_on_the_line(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "c")
    await replace_code(page, '#include "util.h"\nint main(void) { return twice(2) - 4; }\n')
    await page.click(".run-options summary")
    for name, text in (
        ("util.h", "int twice(int x);\n"),
        ("util.c", '#include "util.h"\nint twice(int x) { return x * 2 }\n'),
    ):
        await page.click("#file-add")
        await page.fill("#file-name", name)
        await page.fill("#file-content", text)
    await page.locator("#file-tabs .file-tab", has_text="util.h").click()

    await page.click("#run")
    await wait_for_status(page, "compile_error")
    problem = page.locator("#problems .problem-error", has_text="util.c:2:")
    await expect(problem).to_have_count(1)
    # Nothing is marked in the editor: the error is not in main.c.
    await expect(page.locator(".cm-lintRange-error, .cm-lintPoint-error")).to_have_count(0)
    await problem.click()
    await expect(page.locator("#file-tabs .file-tab[aria-selected='true']")).to_have_text("util.c")
    selected = await page.evaluate(
        "() => { const t = document.getElementById('file-content');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); }"
    )
    assert selected == "int twice(int x) { return x * 2 }", selected


async def test_keys_typed_before_the_run_started_reach_the_program(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "python")
    await replace_code(page, 'print("got", input("? "))')
    # Run and a paste in the same task: the paste certainly precedes `started`.
    await page.evaluate(
        """() => {
            document.getElementById('run').click();
            const data = new DataTransfer();
            data.setData('text/plain', 'early\\n');
            document.querySelector('#terminal textarea')
                .dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true}));
        }"""
    )
    await wait_for_terminal(page, "got early")
    await wait_for_status(page, "exited 0")


async def test_stdin_panel_arguments_and_extra_file_tabs_are_used_by_the_run(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "python")
    await replace_code(
        page, "import sys\nimport helper\nprint(helper.greet(input()), sys.argv[1:])\n"
    )
    await page.click(".run-options summary")
    await page.fill("#stdin-input", "Ada\n")
    await page.fill("#args-input", 'one "two words"')
    await page.click("#file-add")
    await page.fill("#file-name", "helper.py")
    await page.fill("#file-content", "def greet(name):\n    return f'Hello, {name} from helper'\n")
    await page.click("#file-add")
    await page.fill("#file-name", "notes.txt")
    await expect(page.locator("#file-tabs .file-tab")).to_have_text(["helper.py", "notes.txt"])

    await page.click("#run")
    await wait_for_terminal(page, "Hello, Ada from helper ['one', 'two words']")
    await wait_for_status(page, "exited 0")


async def test_projector_mode_and_font_size_survive_a_reload(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await page.select_option("#font-size", "28")
    await page.check("#projector")
    await page.reload()
    await wait_until_ready(page)

    await expect(page.locator("#projector")).to_be_checked()
    await expect(page.locator("#font-size")).to_have_value("28")
    assert await page.evaluate("document.documentElement.hasAttribute('data-projector')")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(0, 0, 0)", background
    size = await page.evaluate("getComputedStyle(document.querySelector('.cm-scroller')).fontSize")
    assert size == "28px", size
    terminal_size = await page.evaluate(
        "getComputedStyle(document.querySelector('#terminal .xterm-rows')).fontSize"
    )
    assert terminal_size == "28px", terminal_size


def tiny_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, written by hand so the test needs no imaging package."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


async def coloured_image_pixels(page: Page) -> int:
    """Pixels on the terminal's image canvases that are neither blank nor the background."""
    count: int = await page.evaluate(
        """() => {
            let coloured = 0;
            for (const canvas of document.querySelectorAll('#terminal canvas')) {
                if (!canvas.width || !canvas.height) continue;
                const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
                for (let i = 0; i < data.length; i += 4) {
                    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
                    if (a > 0 && !(r > 240 && g > 240 && b > 240)) coloured += 1;
                }
            }
            return coloured;
        }"""
    )
    return count


async def wait_for_image(page: Page) -> None:
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#terminal canvas')].some(c => c.width > 0)",
        timeout=RUN_TIMEOUT_MS,
    )


async def test_png_printed_as_an_inline_image_sequence_is_drawn_in_the_terminal(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    png = base64.b64encode(tiny_png(48, 24, (200, 30, 30))).decode()
    code = (
        "import sys\n"
        f"png = '{png}'\n"
        "sys.stdout.write('before\\n\\x1b]1337;File=inline=1;size=%d:%s\\x07\\nafter\\n'"
        " % (len(png) * 3 // 4, png))\n"
    )
    await run_program(page, "python", code)
    await wait_for_terminal(page, "after")
    await wait_until_idle(page)
    await wait_for_image(page)
    assert await coloured_image_pixels(page) >= 48 * 24 // 2
    # Only pixels: the base64 never shows up as text.
    assert png[:32] not in await terminal_text(page)


async def test_oversized_and_corrupt_images_are_dropped_and_the_terminal_goes_on(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    # 3000 x 3000 is over the page's pixel limit, though its PNG is only a few KiB.
    huge = base64.b64encode(tiny_png(3000, 3000, (0, 0, 200))).decode()
    garbage = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"not a picture" * 50).decode()
    code = (
        "import sys\n"
        f"images = ['{huge}', '{garbage}']\n"
        "for i, data in enumerate(images):\n"
        "    sys.stdout.write('\\x1b]1337;File=inline=1;size=%d:%s\\x07' % (len(data) * 3 // 4, data))\n"
        "    print('after', i, flush=True)\n"
    )
    await run_program(page, "python", code)
    await wait_for_terminal(page, "after 1")
    await wait_for_terminal(page, "Finished")
    assert await coloured_image_pixels(page) == 0
    assert huge[:32] not in await terminal_text(page)


async def test_matplotlib_plot_appears_as_an_image_in_the_terminal(open_page: OpenPage) -> None:
    with running_server(free_port(), f"{TEST_SERVER_ID}-plot") as url:
        page = await open_page(url)
        code = (
            "import matplotlib.pyplot as plt\n"
            "plt.plot([0, 1, 2, 3], [0, 1, 4, 9], linewidth=4)\n"
            "plt.title('squares')\n"
            "plt.show()\n"
            "print('plotted')\n"
        )
        await run_program(page, "python", code)
        await wait_for_terminal(page, "plotted")
        await wait_until_idle(page)
        await wait_for_image(page)
        assert await coloured_image_pixels(page) > 1000


async def test_key_bar_sends_ctrl_c_on_a_phone(open_page: OpenPage) -> None:
    page = await open_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    await expect(page.locator("#key-bar")).to_be_visible()
    await run_program(page, "python", 'print("looping", flush=True)\nwhile True:\n    pass\n')
    await wait_for_terminal(page, "looping")
    await page.locator("#key-bar").get_by_role("button", name="Interrupt the program").tap()
    await wait_for_terminal(page, "KeyboardInterrupt")
    await wait_until_idle(page)


async def test_the_desktop_page_has_no_key_bar(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await expect(page.locator("#key-bar")).to_be_hidden()


async def focused_in(page: Page, selector: str) -> bool:
    inside: bool = await page.evaluate(
        "s => document.querySelector(s).contains(document.activeElement)", selector
    )
    return inside


async def test_keyboard_only_from_editor_to_run_to_terminal_and_out(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await choose_language(page, "python")
    # Tab from the top of the page until the editor has the focus (bounded).
    await page.evaluate("document.activeElement?.blur()")
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await focused_in(page, "#editor"):
            break
    assert await focused_in(page, "#editor"), "Tab never reached the editor"
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.insert_text(
        'import time\nname = input("Name? ")\nprint("Hi", name, flush=True)\ntime.sleep(120)'
    )

    await page.keyboard.press("Control+Enter")  # Run; the focus moves to the terminal
    await wait_for_terminal(page, "Name? ")
    assert await focused_in(page, "#terminal")
    await page.keyboard.type("Ada")
    await page.keyboard.press("Enter")
    await wait_for_terminal(page, "Hi Ada")

    # During a run Tab belongs to the program; Escape then Tab leaves the terminal.
    await page.keyboard.press("Tab")
    assert await focused_in(page, "#terminal"), "Tab alone left the running terminal"
    await page.keyboard.press("Escape")
    await page.keyboard.press("Tab")
    assert not await focused_in(page, "#terminal"), "Esc, Tab did not leave the running terminal"
    await page.keyboard.press("Shift+Tab")
    assert await focused_in(page, "#terminal"), "Shift+Tab did not come back to the terminal"

    await page.keyboard.press("Control+c")
    await wait_for_terminal(page, "KeyboardInterrupt")
    await wait_until_idle(page)
    # After the run a key typed says how to run again, and Tab alone leaves.
    await page.keyboard.type("x")
    await wait_for_terminal(page, "press Run")
    await page.keyboard.press("Tab")
    assert not await focused_in(page, "#terminal"), "Tab did not leave the idle terminal"


async def test_screen_reader_mode_is_on_by_default_and_can_be_turned_off(
    open_page: OpenPage,
) -> None:
    page = await open_page()
    await wait_until_ready(page)
    await expect(page.locator("#screen-reader")).to_be_checked()
    # xterm's accessibility tree mirrors the rows for screen readers.
    await expect(page.locator("#terminal .xterm-accessibility-tree")).to_have_count(1)
    await page.uncheck("#screen-reader")
    await expect(page.locator("#terminal .xterm-accessibility-tree")).to_have_count(0)


async def test_a_damaged_share_link_says_so(open_page: OpenPage) -> None:
    page = await open_page("/#lang=python&code=%%%not-base64")
    await wait_until_ready(page)
    await expect(page.locator("#status")).to_contain_text("share link is damaged")


async def test_docs_page_renders_the_operations_with_a_viewer(open_page: OpenPage) -> None:
    page = await open_page()
    await wait_until_ready(page)
    refused: list[str] = []

    def note_refusal(message: ConsoleMessage) -> None:
        if "Content Security" in message.text:
            refused.append(message.text)

    page.on("console", note_refusal)
    await page.click("a.docs-link")
    await expect(page).to_have_url(re.compile(r"/docs$"))
    operations = page.locator(".opblock-summary-path")
    await expect(operations.first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    for path in ("/api/v1/execute", "/api/v1/languages"):
        await expect(operations.filter(has_text=path)).to_have_count(1)
    assert not refused, refused  # the viewer works within its page's CSP
