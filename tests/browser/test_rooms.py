"""Teaching live, end to end: a presenter's playground and viewers' watch pages,
each in its own browser context, against the real server and real containers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, WebSocket, expect

from tests.browser.conftest import OpenPage, running_server
from tests.browser.playground import (
    CLIPBOARD_AND_TITLE_ATTACK,
    LINK_ATTACK,
    RUN_TIMEOUT_MS,
    check_links_are_guarded,
    choose_language,
    refuse_dialogs,
    replace_code,
    terminal_text,
    wait_for_status,
    wait_for_terminal,
    wait_until_idle,
    wait_until_ready,
)
from tests.browser.room_pages import (
    record_room_states,
    start_presenting,
    wait_for_code,
    wait_for_room_state,
)
from tests.conftest import SpecRecorder
from tests.helpers import free_port
from tests.leftovers import TEST_SERVER_ID

GREETER = 'name = input("Name? ")\nprint(f"Hello, {name}")'
#: The contract's promise for edits: viewers see them within a second.
CODE_FOLLOW_MS = 1000


@pytest.fixture(scope="module")
def server_url(page_assets: None, engine_session: SpecRecorder) -> Iterator[str]:
    """The module's server. Every page here comes from one address, and a closed
    tab's room waits for its presenter a while: one client may hold more rooms
    than by default."""
    port, server_id = free_port(), f"{TEST_SERVER_ID}-browser"
    with running_server(port, server_id, CE_SHARING__ROOMS_PER_CLIENT="50") as url:
        yield url


async def present_with_viewers(open_page: OpenPage, viewers: int) -> tuple[Page, list[Page]]:
    """A presenter with an open room (Python chosen) and `viewers` watch pages following it."""
    presenter = await open_page()
    await wait_until_ready(presenter)
    await choose_language(presenter, "python")
    watch_url = await start_presenting(presenter)
    watchers = [await open_page(watch_url) for _ in range(viewers)]
    for watcher in watchers:
        await wait_for_room_state(watcher, "waiting")
    counts = {0: "No one is watching yet", 1: "1 person is watching"}
    await expect(presenter.locator("#present-viewers")).to_contain_text(
        counts.get(viewers, f"{viewers} people are watching")
    )
    return presenter, watchers


async def test_viewers_see_the_presenters_typing_within_a_second(open_page: OpenPage) -> None:
    presenter, viewers = await present_with_viewers(open_page, 2)
    for viewer in viewers:
        await expect(viewer.locator("#viewers")).to_have_text("2 watching")

    await replace_code(presenter, 'print("hello, class")', typed=True)
    typed_at = time.monotonic()
    await asyncio.gather(
        *(wait_for_code(v, 'print("hello, class")', timeout_ms=CODE_FOLLOW_MS) for v in viewers)
    )
    lag_ms = (time.monotonic() - typed_at) * 1000
    assert lag_ms < CODE_FOLLOW_MS, f"viewers followed the last keystroke after {lag_ms:.0f} ms"

    # Their editors are read-only: typing into one changes nothing anywhere.
    await viewers[0].locator(".cm-content").click()
    await viewers[0].keyboard.type("oops")
    await asyncio.sleep(0.3)
    await wait_for_code(viewers[0], 'print("hello, class")', timeout_ms=100)


async def test_viewers_see_an_input_prompt_and_the_presenters_answer(open_page: OpenPage) -> None:
    presenter, viewers = await present_with_viewers(open_page, 2)
    await replace_code(presenter, GREETER)

    await presenter.click("#run")
    for page in (presenter, *viewers):
        await wait_for_terminal(page, "Name? ")
    for viewer in viewers:
        await wait_for_room_state(viewer, "live")
    await presenter.keyboard.type("Ada")
    await presenter.keyboard.press("Enter")

    for page in (presenter, *viewers):
        await wait_for_terminal(page, "Hello, Ada")
    await wait_for_status(presenter, "exited 0")
    for viewer in viewers:
        await wait_for_status(viewer, "exited 0")
        await wait_for_room_state(viewer, "waiting")
        # The viewer's terminal is the presenter's, at the presenter's size.
        presenter_size = await presenter.evaluate("window.__ceTerminalSize()")
        assert await viewer.evaluate("window.__ceTerminalSize()") == presenter_size


async def test_a_late_viewer_sees_the_screen_of_the_run_in_progress(open_page: OpenPage) -> None:
    presenter, _ = await present_with_viewers(open_page, 0)
    await replace_code(presenter, 'print("before you came")\n' + GREETER)
    await presenter.click("#run")
    await wait_for_terminal(presenter, "Name? ")

    late = await open_page(await presenter.locator("#present-url").input_value())
    await wait_for_room_state(late, "live")
    await wait_for_terminal(late, "before you came")
    assert "Name? " in await terminal_text(late)
    await presenter.keyboard.type("Ada")
    await presenter.keyboard.press("Enter")
    await wait_for_terminal(late, "Hello, Ada")
    await wait_for_status(late, "exited 0")


def sent_frames(page: Page) -> list[str | bytes]:
    """Every frame the page sends on its WebSockets from now on."""
    frames: list[str | bytes] = []

    def track(socket: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            frames.append(payload)

        socket.on("framesent", sent)

    page.on("websocket", track)
    return frames


async def test_a_viewers_keystrokes_reach_nothing(open_page: OpenPage) -> None:
    presenter, [viewer] = await present_with_viewers(open_page, 1)
    frames = sent_frames(viewer)
    await viewer.reload()  # its socket is now observed from the start
    await wait_for_room_state(viewer, "waiting")
    await replace_code(presenter, GREETER)
    await presenter.click("#run")
    await wait_for_terminal(viewer, "Name? ")

    await viewer.locator("#terminal").click()
    await viewer.keyboard.type("intruder")
    await viewer.keyboard.press("Enter")
    await viewer.keyboard.press("Control+c")
    await asyncio.sleep(0.5)
    # The program still waits for the presenter, who answers as if nothing happened.
    assert "intruder" not in await terminal_text(presenter)
    assert "KeyboardInterrupt" not in await terminal_text(presenter)
    await presenter.keyboard.type("Ada")
    await presenter.keyboard.press("Enter")
    await wait_for_terminal(viewer, "Hello, Ada")
    await wait_for_status(presenter, "exited 0")

    assert "intruder" not in await terminal_text(viewer)
    assert not [f for f in frames if isinstance(f, bytes)], "the viewer sent terminal bytes"
    types = {json.loads(f)["type"] for f in frames if isinstance(f, str)}
    assert types <= {"watch", "ping"}, types


async def test_program_output_gets_no_further_on_a_viewers_page_than_on_the_presenters(
    open_page: OpenPage,
) -> None:
    """The watch page's terminal has the playground's defences: no clipboard, no title,
    no script link, a web link only after the viewer agrees."""
    presenter, [viewer] = await present_with_viewers(open_page, 1)
    title = await viewer.title()
    await viewer.evaluate("navigator.clipboard.writeText('left alone')")
    prompts = refuse_dialogs(viewer)
    await replace_code(presenter, CLIPBOARD_AND_TITLE_ATTACK + LINK_ATTACK)
    await presenter.click("#run")
    await wait_for_terminal(viewer, "WEB-LINK")
    await wait_for_status(viewer, "exited 0")

    assert await viewer.evaluate("navigator.clipboard.readText()") == "left alone"
    assert await viewer.title() == title
    assert "pwned" not in await terminal_text(viewer)
    await check_links_are_guarded(viewer, prompts)


async def test_open_in_my_playground_runs_the_copy_in_the_viewers_own_terminal(
    open_page: OpenPage,
) -> None:
    presenter, [viewer] = await present_with_viewers(open_page, 1)
    code = 'print("copied", 6 * 7)'
    await replace_code(presenter, code)
    await wait_for_code(viewer, code, timeout_ms=CODE_FOLLOW_MS)

    async with viewer.context.expect_page() as opened:
        await viewer.click("#open-copy")
    playground = await opened.value
    await playground.wait_for_load_state()
    await wait_until_ready(playground)
    await wait_for_code(playground, code, timeout_ms=RUN_TIMEOUT_MS)
    assert await playground.locator("#language").input_value() == "python"

    await playground.click("#run")
    await wait_for_terminal(playground, "copied 42")
    await wait_until_idle(playground)
    # The copy ran in the viewer's own sandbox: nothing reached the room.
    assert "copied 42" not in await terminal_text(presenter)
    assert "copied 42" not in await terminal_text(viewer)


async def test_replay_view_plays_the_recording_of_a_room_run(open_page: OpenPage) -> None:
    presenter, _ = await present_with_viewers(open_page, 0)
    await replace_code(presenter, 'for n in range(3):\n    print(f"frame {n}")\n')
    await presenter.click("#run")
    await wait_for_status(presenter, "exited 0")
    link = presenter.locator("#present-replay-link")
    await expect(link).to_be_visible(timeout=RUN_TIMEOUT_MS)
    replay_path = await link.get_attribute("href")
    download_path = await presenter.locator("#present-download-link").get_attribute("href")
    assert replay_path and replay_path.startswith("/replay/"), replay_path

    replay = await open_page(replay_path)
    await expect(replay.locator("body")).to_have_attribute(
        "data-replay", "ended", timeout=RUN_TIMEOUT_MS
    )
    await expect(replay.locator(".ap-term")).to_contain_text("frame 2")
    # The whole player fits the page: its terminal and its controls are in view
    # (to the pixel: font metrics may leave a fraction of one outside).
    await expect(replay.locator(".ap-term")).to_be_in_viewport(ratio=0.99)
    await expect(replay.locator(".ap-control-bar")).to_be_in_viewport(ratio=0.99)
    # The header's size is the presenter's terminal's.
    size = await presenter.evaluate("window.__ceTerminalSize()")
    await expect(replay.locator("#recording-title")).to_contain_text(
        f"{size['cols']}\N{MULTIPLICATION SIGN}{size['rows']}"
    )
    download = replay.locator("#download")
    assert await download.get_attribute("href") == download_path
    response = await replay.request.get(download_path)
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/x-asciicast")
    assert json.loads((await response.text()).splitlines()[0])["version"] == 2


async def test_watch_page_says_when_the_presenter_drops_returns_and_stops(
    open_page: OpenPage,
) -> None:
    presenter, [viewer] = await present_with_viewers(open_page, 1)
    watch_url = await presenter.locator("#present-url").input_value()

    states = await record_room_states(viewer)
    await presenter.reload()  # the tab keeps the room's key and takes the room back
    await wait_until_ready(presenter)
    await expect(presenter.locator("#present-panel")).to_have_attribute("data-state", "live")
    assert await presenter.locator("#present-url").input_value() == watch_url
    await wait_for_room_state(viewer, "waiting")
    assert "offline" in await states(), "the viewer was never told the presenter dropped"

    await presenter.click("#present-stop")
    await wait_for_room_state(viewer, "closed")
    await expect(viewer.locator("#status")).to_contain_text("stopped presenting")
    await expect(presenter.locator("#present-panel")).to_be_hidden()
    await viewer.reload()  # the link now leads to a page that says so
    await expect(viewer.locator("h1")).to_have_text("This room has ended")


async def test_a_presenter_away_past_the_resume_window_finds_the_room_ended(
    open_page: OpenPage, page_assets: None
) -> None:
    port, server_id = free_port(), f"{TEST_SERVER_ID}-browser-resume"
    with contextlib.ExitStack() as servers:
        url = await asyncio.to_thread(
            servers.enter_context, running_server(port, server_id, CE_SHARING__RESUME_S="1")
        )
        presenter = await open_page(f"{url}/")
        viewer = await open_page(await start_presenting(presenter))
        await wait_for_room_state(viewer, "waiting")

        await presenter.goto("about:blank")  # the tab keeps the room's key meanwhile
        await wait_for_room_state(viewer, "closed", timeout_ms=10_000)
        await expect(viewer.locator("#status")).to_contain_text("did not come back in time")

        await presenter.go_back()  # too late to take the room back
        await expect(presenter.locator("#present-note")).to_contain_text(
            "Your earlier room has closed", timeout=RUN_TIMEOUT_MS
        )
        await expect(presenter.locator("#present-panel")).to_have_attribute("data-state", "off")
        await expect(presenter.locator("#present")).to_have_text("Present")
        await presenter.click("#present")  # and a new room opens at once
        await expect(presenter.locator("#present-panel")).to_have_attribute("data-state", "live")
