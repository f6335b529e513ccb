"""Helpers the whole suite shares: waiting for a condition, free ports, a healthy server.

`eventually` for every poll in async code; `wait_until` for the few blocking
places (sync fixtures and context managers, which may run inside a test's
event loop and so cannot start one).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import socket
import time
import urllib.request
from collections.abc import Awaitable, Callable

from aiohttp import web

from ce_ws.api.appkeys import SANDBOX
from ce_ws.sandbox.docker import DockerSandbox
from ce_ws.sandbox.fleet import EngineFleet

_POLL_S = 0.02


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_s: float = 5.0,
    what: str = "",
    every_s: float = _POLL_S,
) -> None:
    """Wait until `condition()` (plain or awaitable) holds; fail the test if it never does."""
    deadline = time.monotonic() + timeout_s
    while not await _holds(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what or condition}")
        await asyncio.sleep(every_s)


def wait_until(condition: Callable[[], bool], *, timeout_s: float, what: str = "") -> bool:
    """Block until `condition()` holds or `timeout_s` passes; whether it came true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(10 * _POLL_S)
    return True


async def _holds(condition: Callable[[], bool | Awaitable[bool]]) -> bool:
    result = condition()
    return bool(await result) if inspect.isawaitable(result) else bool(result)


def free_port() -> int:
    """A TCP port on loopback nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_healthy(url: str) -> bool:
    """Whether a server answers 200 on `url`/healthz now."""
    with (
        contextlib.suppress(OSError),
        urllib.request.urlopen(f"{url}/healthz", timeout=1) as response,
    ):
        return bool(response.status == 200)
    return False


def wait_healthy(url: str, *, exit_code: Callable[[], int | None], timeout_s: float) -> None:
    """Wait until the server at `url` answers `/healthz`; fail at once if it exited."""

    def healthy() -> bool:
        if (code := exit_code()) is not None:
            raise AssertionError(f"the server at {url} exited with {code}")
        return is_healthy(url)

    if not wait_until(healthy, timeout_s=timeout_s):
        raise AssertionError(f"{url}/healthz did not answer within {timeout_s} s")


def only_engine(app: web.Application) -> DockerSandbox:
    """The one engine of a server started without `CE_SANDBOX__ENGINES`."""
    fleet = app[SANDBOX]
    assert isinstance(fleet, EngineFleet)
    (engine,) = fleet.members
    return engine


def seconds_since(stamp: str, now: datetime.datetime) -> int:
    """How long ago (mod one day) the `HH:MM:SS` of `stamp` was, at `now`."""
    hours, minutes, seconds = (int(part) for part in stamp.split(":"))
    at = now.hour * 3600 + now.minute * 60 + now.second
    return (at - (hours * 3600 + minutes * 60 + seconds)) % 86_400
