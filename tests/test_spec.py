"""The container spec's limits: the run's own, plus gVisor's headroom under runsc."""

from __future__ import annotations

import pytest

from ce_ws.config import MIB, RunLimits, SandboxSettings
from ce_ws.sandbox.spec import container_config, engine_limits

LIMITS = RunLimits(memory_mb=128, pids=32)


def test_runc_containers_get_exactly_the_runs_limits() -> None:
    assert engine_limits(SandboxSettings(runtime="runc"), LIMITS) == (128 * MIB, 32)


def test_runsc_containers_get_the_sentrys_headroom_on_top() -> None:
    settings = SandboxSettings(runtime="runsc")
    assert engine_limits(settings, LIMITS) == ((128 + 64) * MIB, 32 + 384)
    tuned = SandboxSettings(runtime="runsc", runsc_pids_headroom=0, runsc_memory_headroom_mb=16)
    assert engine_limits(tuned, LIMITS) == ((128 + 16) * MIB, 32)


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
def test_memory_and_swap_are_always_equal(runtime: str) -> None:
    body = container_config(
        settings=settings_for(runtime),
        limits=LIMITS,
        labels={},
        staging_path="/tmp/ce-x",
        seccomp_profile="{}",
        tty=True,
        size=(80, 24),
        tmp_exec=False,
    )
    host = body["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == engine_limits(settings_for(runtime), LIMITS)[0]
    assert host["Runtime"] == runtime


def settings_for(runtime: str) -> SandboxSettings:
    return SandboxSettings(runtime=runtime)  # type: ignore[arg-type]
