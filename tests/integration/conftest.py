"""Fixtures for tests against the real engine and the real runtime image."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ce_ws.api.app import create_app
from ce_ws.config import Settings
from ce_ws.languages import load_languages
from ce_ws.sandbox.docker import SHUTDOWN_SWEEP
from ce_ws.sandbox.fleet import EngineFleet
from tests import spec_recorder
from tests.conftest import SpecRecorder
from tests.integration.terminal import TermClient
from tests.leftovers import TEST_SERVER_ID, wait_until_clean

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


#: This session's recordings, apart from any real server's.
RECORDINGS_DIR = Path(tempfile.gettempdir()) / f"recordings-{TEST_SERVER_ID}"


def test_settings(**overrides: Any) -> Settings:
    """Settings for a test server: its own owner label and recordings folder."""
    overrides.setdefault("server_id", TEST_SERVER_ID)
    overrides.setdefault("recordings", {"dir": str(RECORDINGS_DIR)})
    return Settings(**overrides)


@pytest.fixture(autouse=True, scope="session")
def recordings_removed_at_the_end() -> Iterator[None]:
    yield
    shutil.rmtree(RECORDINGS_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_leak_after_test(
    engine_guard: SpecRecorder, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Every test here has an engine, follows the spec, and leaves nothing behind.

    Checked after its servers shut down, whose last step sweeps whatever is
    left: so that sweep must have found nothing either.
    """
    yield
    containers, staging = wait_until_clean(caches=False)  # a module's server may still run
    assert (containers, staging) == ([], []), f"test left behind {containers} {staging}"
    swept = [r.getMessage() for r in caplog.records if SHUTDOWN_SWEEP in r.getMessage()]
    assert not swept, f"runs left these for the shutdown sweep: {swept}"


class ServerAsDeployed(TestServer):
    """A test server that, like `web.run_app`, never cancels a handler whose client left.

    aiohttp's own test server does (`handler_cancellation=True`), which would
    hide a handler that goes on working for nobody.
    """

    async def _make_runner(self, **kwargs: Any) -> web.BaseRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


@pytest.fixture
def make_client(aiohttp_client: Any, engine_guard: SpecRecorder) -> MakeClient:
    """Build an app from test settings (with overrides) and a client for it.

    Its sandbox records every container it creates for the spec check.
    """

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        settings = test_settings(**overrides)
        sandbox = EngineFleet(
            settings, load_languages(), on_created=spec_recorder.hook(engine_guard.add)
        )
        server = ServerAsDeployed(create_app(settings, sandbox=sandbox))
        client: TestClient[Any, Any] = await aiohttp_client(server)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client()


@pytest.fixture
async def term(client: TestClient[Any, Any]) -> AsyncIterator[TermClient]:
    """A connected WebSocket client, hello already read."""
    async with TermClient.connect(client) as connected:
        yield connected
