"""The suite's spec checker catches what it must (it judges every container of the suite)."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from ce_ws.config import RunLimits, SandboxSettings
from ce_ws.sandbox.box import BoxProfile
from ce_ws.sandbox.spec import container_config
from tests.container_spec import violations

SECCOMP = (Path(__file__).resolve().parents[2] / "docker" / "seccomp.json").read_text()


def created(
    profile: BoxProfile, server_id: str = "ce-unit"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A create body for `profile` and the inspect the engine would answer with."""
    labels = {"ce.run": "r1", "ce.owner": server_id, "ce.profile": json.dumps(asdict(profile))}
    body = container_config(
        settings=SandboxSettings(),
        limits=profile.limits,
        runtime=profile.runtime,
        labels=labels,
        staging_path=f"/tmp/ce-{server_id}-r1",
        seccomp_profile=SECCOMP,
        tty=profile.tty,
        size=(80, 24),
        tmp_exec=profile.tmp_exec,
        launcher=profile.launcher,
    )
    host = {k: v for k, v in body["HostConfig"].items() if k != "ConsoleSize"}
    info = {"Config": {k: v for k, v in body.items() if k != "HostConfig"}, "HostConfig": host}
    return body, copy.deepcopy(info)


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
@pytest.mark.parametrize("server_id", ["ce-unit", "ce-unit-browser-restart"])
def test_a_container_built_by_the_spec_conforms(runtime: str, server_id: str) -> None:
    """For the suite's own id and any server id of its family."""
    profile = BoxProfile.of(RunLimits(cpus=0.29), tty=True, tmp_exec=False, runtime=runtime)  # type: ignore[arg-type]
    body, info = created(profile, server_id)
    assert violations(body, info, owner="ce-unit") == []


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("Memory", 512 * 1024 * 1024, "Memory="),
        ("PidsLimit", 4096, "PidsLimit="),
        ("NanoCpus", 2_000_000_000, "NanoCpus="),
        ("Runtime", "runsc", "Runtime="),
    ],
)
def test_limits_other_than_the_profiles_are_caught(field: str, value: Any, said: str) -> None:
    profile = BoxProfile.of(RunLimits(), tty=False, tmp_exec=True, runtime="runc")
    body, info = created(profile)
    info["HostConfig"][field] = value
    body["HostConfig"][field] = value
    assert any(said in problem for problem in violations(body, info, owner="ce-unit"))


def test_a_container_without_its_profile_label_is_caught() -> None:
    body, info = created(BoxProfile.of(RunLimits(), tty=True, tmp_exec=False, runtime="runc"))
    del info["Config"]["Labels"]["ce.profile"]
    assert "no ce.profile label" in violations(body, info, owner="ce-unit")


@pytest.mark.parametrize(
    "masked",
    [
        None,  # left to the engine's default, which shows the host's boot line
        ["/proc/kcore", "/proc/cmdline", "/proc/sys/kernel/random/boot_id"],  # defaults lost
    ],
)
def test_masked_paths_other_than_the_specs_are_caught(masked: list[str] | None) -> None:
    body, info = created(BoxProfile.of(RunLimits(), tty=True, tmp_exec=False, runtime="runc"))
    if masked is None:
        del body["HostConfig"]["MaskedPaths"]
        info["HostConfig"]["MaskedPaths"] = ["/proc/kcore", "/proc/keys", "/sys/firmware"]
    else:
        body["HostConfig"]["MaskedPaths"] = info["HostConfig"]["MaskedPaths"] = masked
    problems = violations(body, info, owner="ce-unit")
    assert any(problem.startswith("MaskedPaths ") for problem in problems), problems
    if masked is None:
        assert "request lacks HostConfig.MaskedPaths" in problems
