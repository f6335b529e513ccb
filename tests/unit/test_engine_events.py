"""The engine's events stream: followed for the server's whole life."""

from __future__ import annotations

import asyncio

import aiodocker
import pytest

from ce_ws.errors import SandboxError
from ce_ws.sandbox import events as events_module
from ce_ws.sandbox.events import EngineEvents


def _events() -> EngineEvents:
    async def probe() -> None:
        pass

    docker = aiodocker.Docker(url="unix://localhost")
    return EngineEvents(docker, owner_filter="ce.owner=ce-unit", probe=probe)


async def test_the_events_stream_is_resubscribed_when_it_ends_or_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = _events()
    subscriptions: list[str] = []
    fourth = asyncio.Event()
    backs: list[int] = []
    events.on_back = lambda: backs.append(len(subscriptions))

    async def follow(filters: str) -> None:
        subscriptions.append(filters)
        if len(subscriptions) == 2:
            raise aiodocker.DockerError(500, {"message": "engine restarting"})
        if len(subscriptions) == 4:
            fourth.set()
            await asyncio.Event().wait()  # a healthy stream never ends
        # otherwise the stream simply ends, as when the engine restarts

    monkeypatch.setattr(events, "_follow", follow)
    monkeypatch.setattr(events_module, "_EVENTS_RETRY_S", 0)
    watcher = asyncio.create_task(events.follow_forever())
    try:
        await asyncio.wait_for(fourth.wait(), timeout=5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await events._docker.close()
    assert len(subscriptions) == 4 and all(f == subscriptions[0] for f in subscriptions)
    for action in ('"oom"', '"kill"', '"die"'):
        assert action in subscriptions[0]
    assert "ce.owner=ce-unit" in subscriptions[0]
    assert backs == [1, 2, 3]  # every resubscription after the first looks again


async def test_the_engine_is_unreachable_until_its_probe_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = [False, False, True]
    seen: list[bool] = []

    async def probe() -> None:
        seen.append(events.reachable)
        if not answers.pop(0):
            raise SandboxError("container engine not reachable to report its version")

    events = EngineEvents(
        aiodocker.Docker(url="unix://localhost"), owner_filter="ce.owner=ce-unit", probe=probe
    )
    followed = asyncio.Event()

    async def follow(filters: str) -> None:
        followed.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(events, "_follow", follow)
    monkeypatch.setattr(events_module, "_EVENTS_RETRY_S", 0)
    watcher = asyncio.create_task(events.follow_forever())
    try:
        await asyncio.wait_for(followed.wait(), timeout=5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await events._docker.close()
    # Reachable until the first probe failed, unreachable until one answered.
    assert seen == [True, False, False] and events.reachable
    assert events.unreachable_because == ""


def _kill(container_id: str, signal_number: int) -> dict[str, object]:
    attributes = {"signal": str(signal_number)}
    return {"Action": "kill", "Actor": {"ID": container_id, "Attributes": attributes}}


async def test_a_kill_this_server_asked_for_is_not_the_engines() -> None:
    events = _events()
    for container_id in ("ours", "engine", "untracked"):
        if container_id != "untracked":
            events.track(container_id)
    events.expect_kill("ours", "SIGKILL")
    for container_id in ("ours", "engine", "untracked"):
        events._record(_kill(container_id, 9 if container_id == "ours" else 15))
    assert not await events.stopped_by_engine("ours", "SIGKILL")
    assert await events.stopped_by_engine("engine", "SIGTERM")
    assert not await events.stopped_by_engine("untracked", "SIGSEGV")
    events.forget("engine")
    events._record(_kill("engine", 15))  # an event after removal is not kept
    assert not await events.stopped_by_engine("engine", "SIGSEGV")
    await events._docker.close()


async def test_a_die_event_is_told_and_forgotten_with_its_container() -> None:
    events = _events()
    died: list[str] = []
    events.on_died = died.append
    events.track("c1")
    events._record({"Action": "die", "Actor": {"ID": "c1"}})
    assert died == ["c1"] and events.has_died("c1")
    events.forget("c1")
    assert not events.has_died("c1")
    await events._docker.close()


async def test_an_unasked_sigkill_waits_for_the_oom_event_and_is_not_the_engines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel's OOM kill is a SIGKILL this server never sent: the wait for
    # the engine's word ends as soon as the late `oom` event is in.
    monkeypatch.setattr(events_module, "_FOREIGN_KILL_GRACE_S", 60)
    events = _events()
    events.track("greedy")
    waiting = asyncio.create_task(events.stopped_by_engine("greedy", "SIGKILL"))
    await asyncio.sleep(0)
    events._record({"Action": "oom", "Actor": {"ID": "greedy"}})
    assert not await asyncio.wait_for(waiting, timeout=5)
    assert events.was_oom_killed("greedy") and not events.sent_kill("greedy")
    await events._docker.close()
