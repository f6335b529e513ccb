"""Placement over several engines (`choose_engine`), on stand-ins for the engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from ce_ws.config import Settings
from ce_ws.errors import SandboxError
from ce_ws.sandbox.base import BoxProfile, EngineCondition, EngineState, not_ready_because
from ce_ws.sandbox.docker import DockerSandbox
from ce_ws.sandbox.fleet import choose_engine, engine_owner

PROFILE = BoxProfile.of(Settings().defaults, tty=True, tmp_exec=False, runtime="runc")


@dataclass
class Events:
    unreachable_because: str = "the container engine is not reachable"


@dataclass
class StandIn:
    """What placement reads of a `DockerSandbox`."""

    name: str
    runs: int = 0
    capacity: int = 4
    reachable: bool = True
    draining: bool = False
    idle: set[BoxProfile] = field(default_factory=set)
    engine: Any = field(default_factory=lambda: type("E", (), {"events": Events()})())

    def has_idle(self, profile: BoxProfile) -> bool:
        return profile in self.idle


def choose(*members: StandIn) -> str:
    return choose_engine(cast(list[DockerSandbox], list(members)), PROFILE).name


def test_the_most_free_capacity_wins() -> None:
    assert choose(StandIn("a", runs=3), StandIn("b", runs=1)) == "b"
    assert choose(StandIn("a", runs=3, capacity=10), StandIn("b", runs=1)) == "a"


def test_a_tie_goes_to_a_warm_box_then_to_the_first() -> None:
    assert choose(StandIn("a"), StandIn("b", idle={PROFILE})) == "b"
    assert choose(StandIn("a"), StandIn("b")) == "a"


def test_engines_down_drained_or_full_take_nothing() -> None:
    assert choose(StandIn("a", reachable=False), StandIn("b", runs=3)) == "b"
    assert choose(StandIn("a", draining=True), StandIn("b", runs=3)) == "b"
    assert choose(StandIn("a", runs=4), StandIn("b", runs=3)) == "b"


def test_when_none_may_take_the_run_the_run_is_told_why() -> None:
    with pytest.raises(SandboxError, match="each is drained or not answering"):
        choose(StandIn("a", reachable=False), StandIn("b", draining=True))
    with pytest.raises(SandboxError, match="runs as many programs as it may"):
        choose(StandIn("a", runs=4), StandIn("b", runs=4))
    # One engine: its own words, as before there were several.
    with pytest.raises(SandboxError, match=r"^the container engine is not reachable$"):
        choose(StandIn("local", reachable=False))


def test_owners_keep_one_engine_as_before_and_tell_several_apart() -> None:
    assert engine_owner("ce-a", "local", several=False) == "ce-a"
    assert engine_owner("ce-a", "b", several=True) == "ce-a-b"


def _state(
    name: str, condition: EngineCondition, reason: str | None = None, runs: int = 0
) -> EngineState:
    return EngineState(name, condition, reason, runs=runs, capacity=2, pool_idle=None)


def test_ready_while_any_engine_takes_runs_and_else_each_says_why() -> None:
    down = _state("a", "down", "not reachable")
    assert not_ready_because([down, _state("b", "ready")]) is None
    assert not_ready_because([down]) == "not reachable"
    assert not_ready_because([down, _state("b", "ready", runs=2)]) == (
        "no engine can take a run now: a: not reachable; b: it runs 2 programs, its capacity"
    )
