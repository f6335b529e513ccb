"""What a presenter and a viewer do on the room pages, as Playwright steps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, expect

from tests.browser.playground import RUN_TIMEOUT_MS, wait_until_ready

#: The page's rendered document as one string (CodeMirror draws one `.cm-line` per line).
EDITOR_TEXT_JS = (
    "() => [...document.querySelectorAll('.cm-content .cm-line')]"
    ".map((line) => line.textContent).join('\\n')"
)

#: The share of a canvas's pixels that are dark (a QR code is about half dark).
DARK_SHARE_JS = """canvas => {
  const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  let dark = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] < 384) dark += 1;
  return dark / (data.length / 4);
}"""


async def start_presenting(page: Page) -> str:
    """Press Present on a ready playground; the watch link once the room is open."""
    await wait_until_ready(page)
    await page.click("#present")
    await expect(page.locator("#present-panel")).to_have_attribute(
        "data-state", "live", timeout=RUN_TIMEOUT_MS
    )
    url = await page.locator("#present-url").input_value()
    assert "/watch/" in url, url
    qr = page.locator("#present-qr")
    await expect(qr).to_have_attribute("data-encoded", url)
    await expect(qr).to_be_visible()
    dark_share: float = await qr.evaluate(DARK_SHARE_JS)
    assert 0.2 < dark_share < 0.8, f"the QR code is not drawn ({dark_share:.0%} dark)"
    return url


async def wait_for_room_state(
    page: Page, state: str, *, timeout_ms: float = RUN_TIMEOUT_MS
) -> None:
    """The watch page's state badge says `state` (connecting, waiting, live, offline, closed, unknown)."""
    badge = page.locator("#room-state")
    try:
        await expect(badge).to_have_attribute("data-state", state, timeout=timeout_ms)
    except AssertionError as error:
        shown = await badge.get_attribute("data-state")
        words = await page.locator("#status").inner_text()
        raise AssertionError(
            f"room state is {shown!r}, not {state!r}; status: {words!r}"
        ) from error


async def wait_for_code(page: Page, code: str, *, timeout_ms: float) -> None:
    """The (read-only) editor shows exactly `code` within `timeout_ms`."""
    try:
        await page.wait_for_function(
            f"code => ({EDITOR_TEXT_JS})() === code", arg=code, timeout=timeout_ms
        )
    except PlaywrightError as error:
        shown = await page.evaluate(EDITOR_TEXT_JS)
        raise AssertionError(f"editor shows {shown!r}, not {code!r}") from error


async def record_room_states(page: Page) -> Callable[[], Awaitable[list[str]]]:
    """Note every state the watch page's badge takes from now on (even briefly).

    Returns a function that reads the states seen so far.
    """
    await page.evaluate(
        """() => {
          const badge = document.getElementById('room-state');
          window.__roomStates = [badge.dataset.state];
          new MutationObserver(() => window.__roomStates.push(badge.dataset.state))
            .observe(badge, { attributes: true, attributeFilter: ['data-state'] });
        }"""
    )

    async def seen() -> list[str]:
        states: list[str] = await page.evaluate("window.__roomStates")
        return states

    return seen
