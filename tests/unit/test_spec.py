"""The container spec's limits: the run's own, plus gVisor's headroom under runsc."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ce_ws.config import MIB, RunLimits, Runtime, SandboxSettings, Settings
from ce_ws.sandbox.spec import container_config, engine_limits

LIMITS = RunLimits(memory_mb=128, pids=32)


def test_runc_containers_get_exactly_the_runs_limits() -> None:
    assert engine_limits(SandboxSettings(), LIMITS, "runc") == (128 * MIB, 32)


def test_runsc_containers_get_the_sentrys_headroom_on_top() -> None:
    assert engine_limits(SandboxSettings(), LIMITS, "runsc") == ((128 + 64) * MIB, 32 + 384)
    tuned = SandboxSettings(runsc_pids_headroom=0, runsc_memory_headroom_mb=16)
    assert engine_limits(tuned, LIMITS, "runsc") == ((128 + 16) * MIB, 32)


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
def test_memory_and_swap_are_always_equal(runtime: Runtime) -> None:
    body = container_config(
        settings=SandboxSettings(),
        limits=LIMITS,
        runtime=runtime,
        labels={},
        staging_path="/tmp/ce-x",
        seccomp_profile="{}",
        tty=True,
        size=(80, 24),
        tmp_exec=False,
    )
    host = body["HostConfig"]
    memory = engine_limits(SandboxSettings(), LIMITS, runtime)[0]
    assert host["Memory"] == host["MemorySwap"] == memory
    assert host["Runtime"] == runtime


def test_a_language_may_have_a_runtime_of_its_own() -> None:
    settings = SandboxSettings(runtime="runc", language_runtimes={"c": "runsc"})
    assert (settings.runtime_for("c"), settings.runtime_for("python")) == ("runsc", "runc")


def test_language_runtimes_must_name_known_languages() -> None:
    with pytest.raises(ValidationError, match=r"unknown languages.*cobol"):
        Settings(sandbox={"language_runtimes": {"cobol": "runsc"}})
