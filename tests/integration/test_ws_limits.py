"""Limits: server defaults, client may lower them, above the maximum is refused."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tests.integration.conftest import MakeClient
from tests.integration.terminal import TermClient


def inspect_run(run_id: str) -> dict:
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=ce.run={run_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(ids) == 1, ids
    return json.loads(
        subprocess.run(
            ["docker", "inspect", ids[0]], capture_output=True, text=True, check=True
        ).stdout
    )[0]


async def test_default_limits_are_applied_to_the_container(term: TermClient) -> None:
    started = await term.run("bash", "echo up; sleep 30")
    await term.expect(b"up")
    host = (await asyncio.to_thread(inspect_run, started["run_id"]))["HostConfig"]
    assert started["limits"] == term.hello["limits"]["defaults"]
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024 * 1024
    assert host["NanoCpus"] == 1_000_000_000 and host["PidsLimit"] == 64
    ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}
    assert ulimits == {"nofile": (256, 256), "fsize": (16 << 20, 16 << 20), "core": (0, 0)}
    assert "size=67108864" in host["Tmpfs"]["/tmp"]
    await term.send(type="kill")
    await term.wait_exit()


async def test_lower_limits_are_honoured(term: TermClient) -> None:
    asked = {
        "wall_ms": 5000,
        "idle_ms": 4000,
        "cpu_ms": 3000,
        "memory_mb": 96,
        "cpus": 0.5,
        "pids": 16,
        "output_bytes": 4096,
    }
    started = await term.run("bash", "echo up; sleep 30", limits=asked)
    await term.expect(b"up")
    assert started["limits"] == asked
    host = (await asyncio.to_thread(inspect_run, started["run_id"]))["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 96 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000 and host["PidsLimit"] == 16
    await term.send(type="kill")
    await term.wait_exit()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("wall_ms", 3_600_001),  # a terminal run's maximum (CE_TERMINAL__MAX_WALL_MS)
        ("idle_ms", 10**9),
        ("cpu_ms", 600_001),
        ("memory_mb", 4096),
        ("cpus", 8),
        ("pids", 100_000),
        ("output_bytes", 1 << 30),
    ],
)
async def test_limit_above_maximum_is_refused(term: TermClient, name: str, value: int) -> None:
    refused = await term.run("bash", "echo never", limits={name: value})
    assert refused["type"] == "error" and refused["code"] == "limit_exceeded"
    assert refused["field"] == f"limits.{name}"


async def test_configured_maxima_bound_requests(make_client: MakeClient) -> None:
    client = await make_client(terminal={"max_wall_ms": 2000, "wall_ms": 1000})
    async with TermClient.connect(client) as term:
        assert term.hello["limits"]["maxima"]["wall_ms"] == 2000
        refused = await term.run("bash", "true", limits={"wall_ms": 3000})
        assert refused["code"] == "limit_exceeded"
        exit_message = await term.run_to_exit("bash", "sleep 10")
        assert exit_message["status"] == "timeout" and exit_message["wall_ms"] < 2500
        assert exit_message["limit"] == "wall"


async def test_code_over_the_size_cap_is_refused_before_any_container(
    make_client: MakeClient,
) -> None:
    client = await make_client(max_code_bytes=2048)
    async with TermClient.connect(client) as term:
        refused = await term.run("python", "#" * 4096)
        assert refused["code"] == "code_too_large" and refused["field"] == "code"
