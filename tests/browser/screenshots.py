"""Take the README's screenshots of the playground (docs/img/*.png).

    python -m tests.browser.screenshots

Starts a real server on a free port (the runtime image must have matplotlib for
the plot), drives Debian's Chromium, and writes the page, projector mode and a
plot. Run again after changing the page's looks.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, running_server
from tests.browser.playground import (
    choose_language,
    replace_code,
    wait_for_terminal,
    wait_until_idle,
    wait_until_ready,
)
from tests.helpers import free_port
from tests.leftovers import TEST_SERVER_ID
from tests.spec_recorder import RECORD_ENV

OUT = ROOT / "docs" / "img"
GREETING = 'name = input("Your name? ")\nprint(f"Hello, {name}!")\n'
SEGFAULT = (
    '#include <stdlib.h>\nint main(void) {\n    int *p = (int *)(long)atoi("16");\n    *p = 1;\n}\n'
)
PLOT = (
    "import numpy as np\nimport matplotlib.pyplot as plt\n\n"
    "x = np.linspace(0, 2 * np.pi, 200)\n"
    "plt.plot(x, np.sin(x), label='sin')\nplt.plot(x, np.cos(x), label='cos')\n"
    "plt.legend()\nplt.title('A plot in the terminal')\nplt.show()\n"
)


async def run(page: Page, language: str, code: str, *, typed: str = "") -> None:
    await choose_language(page, language)
    await replace_code(page, code)
    await page.click("#run")
    if typed:
        await page.keyboard.type(typed)
    await wait_until_idle(page)


async def shoot(url: str) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(
                base_url=url, viewport={"width": 1280, "height": 720}
            )
            page = await context.new_page()
            await page.goto("/")
            await wait_until_ready(page)
            await run(page, "python", GREETING, typed="Ada\n")
            await wait_for_terminal(page, "Hello, Ada!")
            await page.screenshot(path=OUT / "playground.png")

            await page.check("#projector")
            await run(page, "c", SEGFAULT)
            await wait_for_terminal(page, "Segmentation fault")
            await page.screenshot(path=OUT / "projector.png")
            await page.uncheck("#projector")

            await run(page, "python", PLOT)
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#terminal canvas')].some(c => c.width > 0)"
            )
            await page.screenshot(path=OUT / "plot.png")
        finally:
            await browser.close()
    return [OUT / name for name in ("playground.png", "projector.png", "plot.png")]


def main() -> None:
    # The test server records the containers it creates; nobody checks them here.
    with tempfile.TemporaryDirectory() as scratch:
        os.environ[RECORD_ENV] = str(Path(scratch) / "containers.jsonl")
        with running_server(free_port(), f"{TEST_SERVER_ID}-screenshots") as url:
            for path in asyncio.run(shoot(url)):
                print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
