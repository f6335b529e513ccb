"""The engine's events stream: followed for the server's whole life."""

from __future__ import annotations

import asyncio

import aiodocker
import pytest

from ce_ws.config import SandboxSettings
from ce_ws.sandbox import engine as engine_module
from ce_ws.sandbox.engine import Engine


async def test_the_events_stream_is_resubscribed_when_it_ends_or_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(SandboxSettings(), server_id="ce-unit", seccomp_profile="{}")
    subscriptions: list[dict[str, str]] = []
    fourth = asyncio.Event()

    async def follow(params: dict[str, str]) -> None:
        subscriptions.append(params)
        if len(subscriptions) == 2:
            raise aiodocker.DockerError(500, {"message": "engine restarting"})
        if len(subscriptions) == 4:
            fourth.set()
            await asyncio.Event().wait()  # a healthy stream never ends
        # otherwise the stream simply ends, as when the engine restarts

    monkeypatch.setattr(engine, "_follow_events", follow)
    monkeypatch.setattr(engine_module, "_EVENTS_RETRY_S", 0)
    watcher = asyncio.create_task(engine.watch_events())
    try:
        await asyncio.wait_for(fourth.wait(), timeout=5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await engine.docker.close()
    assert len(subscriptions) == 4 and all(p == subscriptions[0] for p in subscriptions)
    assert '"oom"' in subscriptions[0] and "ce.owner=ce-unit" in subscriptions[0]
