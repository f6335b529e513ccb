"""Fixtures for the playground page against the real server and engine.

The server runs as a subprocess (`python -m ce_ws serve`) on a free port, the
page is driven by Debian's Chromium through Playwright (never a browser build
that Playwright downloads itself), and each test opens its own browser.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from tests.conftest import SpecRecorder
from tests.helpers import free_port, wait_healthy
from tests.leftovers import TEST_SERVER_ID

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 20.0

OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture(scope="session")
def page_assets() -> None:
    """The bundle the page loads (the build is a no-op when it is current)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash scripts/ensure-package.sh /usr/bin/chromium chromium` as root"
        )
    if shutil.which("npm") is None:
        pytest.fail("npm is missing: install Node.js to build the page's assets")
    subprocess.run(["bash", str(ROOT / "scripts" / "build-assets.sh")], cwd=ROOT, check=True)


@contextlib.contextmanager
def running_server(port: int, server_id: str, **env: str) -> Iterator[str]:
    """A real `ce_ws serve` on `port` until the block ends (then SIGTERM); yields its URL.

    Its recordings go to a folder of its own, removed afterwards (not the work tree).
    """
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"server-{server_id}.log"
    with (
        tempfile.TemporaryDirectory(prefix="browser-recordings-") as recordings,
        log_path.open("ab") as log,
    ):
        environment = {
            **os.environ,
            "CE_HOST": "127.0.0.1",
            "CE_PORT": str(port),
            "CE_ALLOWED_ORIGINS": json.dumps([url]),
            "CE_SERVER_ID": server_id,
            "CE_RECORDINGS__DIR": recordings,
            **env,
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.spec_recorder", "serve"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                wait_healthy(url, exit_code=server.poll, timeout_s=STARTUP_TIMEOUT_S)
            except AssertionError as exc:
                pytest.fail(f"{exc}; see {log_path}")
            yield url
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
                pytest.fail(f"server ignored SIGTERM for {SHUTDOWN_TIMEOUT_S} s")


@pytest.fixture(autouse=True)
def engine_checked(engine_guard: SpecRecorder) -> None:
    """Every browser test has an engine and its server's containers follow the spec."""


@pytest.fixture(scope="module")
def server_url(page_assets: None, engine_session: SpecRecorder) -> Iterator[str]:
    """Base URL of the module's server, stopped after the module.

    Not kept for the session: its warm containers would be counted as
    leftovers by the tests that follow.
    """
    with running_server(free_port(), f"{TEST_SERVER_ID}-browser") as url:
        yield url


@pytest.fixture
async def open_page(server_url: str, request: pytest.FixtureRequest) -> AsyncIterator[OpenPage]:
    """Open the playground (or `url`) in a fresh headless Chromium context.

    Contexts may read and write the clipboard so tests can check what a program
    could do to it. At teardown, pass or fail, every opened page is saved as
    artifacts/<test name>[-N].png to look at by eye.
    """
    pages: list[Page] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )

        async def open_(url: str = "/", *, color_scheme: str = "light", **device: Any) -> Page:
            """`device`: Playwright context options that override the desktop ones (a phone)."""
            context = await browser.new_context(
                **{
                    "base_url": server_url,
                    "viewport": {"width": 1280, "height": 760},
                    "color_scheme": color_scheme,
                    "permissions": ["clipboard-read", "clipboard-write"],
                    **device,
                }
            )
            page = await context.new_page()
            pages.append(page)
            await page.goto(url)
            return page

        try:
            yield open_
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            for index, page in enumerate(pages):
                suffix = f"-{index + 1}" if index else ""
                with contextlib.suppress(Exception):
                    await page.screenshot(path=ARTIFACTS / f"{request.node.name}{suffix}.png")
            await browser.close()
