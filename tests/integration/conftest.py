"""Fixtures for tests against the real engine and the real runtime image."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ce_ws.config import Settings
from ce_ws.web import SHUTDOWN_SWEEP, create_app
from tests.conftest import TEST_SERVER_ID, wait_until_clean
from tests.integration.terminal import TermClient

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


def test_settings(**overrides: Any) -> Settings:
    """Settings for a test server: its own owner label, fast reaper off."""
    overrides.setdefault("server_id", TEST_SERVER_ID)
    return Settings(**overrides)


@pytest.fixture(autouse=True)
def no_leak_after_test(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every integration test leaves no container and no staging folder.

    Checked after its servers shut down, whose last step sweeps whatever is
    left: so that sweep must have found nothing either.
    """
    yield
    containers, staging = wait_until_clean()
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
def make_client(aiohttp_client: Any) -> MakeClient:
    """Build an app from test settings (with overrides) and a client for it."""

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        server = ServerAsDeployed(create_app(test_settings(**overrides)))
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
