"""The runtime image, the launcher and the engine bootstrap, on the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiodocker
import pytest

from ce_ws.config import Settings
from ce_ws.image import RECIPE_LABEL, recipe_hash
from ce_ws.languages import load_languages
from tests.leftovers import TEST_SERVER_ID

ROOT = Path(__file__).resolve().parents[2]
IMAGE = Settings().sandbox.image
LANGUAGES = load_languages()
HELLO = {
    "python": ("main.py", 'print("hi")'),
    "javascript": ("main.js", 'console.log("hi")'),
    "c": ("main.c", '#include <stdio.h>\nint main(void){puts("hi");}'),
    "cpp": ("main.cpp", '#include <iostream>\nint main(){std::cout<<"hi\\n";}'),
    "bash": ("main.sh", "echo hi"),
    "ruby": ("main.rb", 'puts "hi"'),
}
LOCKED_DOWN = {
    "User": "65534:65534",
    "NetworkDisabled": True,
    "Labels": {"ce.owner": TEST_SERVER_ID, "ce.run": "image-test"},
}


@pytest.fixture
async def docker() -> AsyncIterator[aiodocker.Docker]:
    client = aiodocker.Docker()
    try:
        yield client
    finally:
        await client.close()


async def run_in_image(
    docker: aiodocker.Docker, cmd: list[str], binds: list[str] | None = None
) -> tuple[int, str]:
    """Run `cmd` locked down (no network, read-only root, non-root); return code and output."""
    config = {
        "Image": IMAGE,
        "Cmd": cmd,
        **LOCKED_DOWN,
        "HostConfig": {
            "NetworkMode": "none",
            "ReadonlyRootfs": True,
            "Tmpfs": {"/tmp": "rw,exec,size=64m"},
            "Binds": binds or [],
            "CapDrop": ["ALL"],
        },
    }
    container = await docker.containers.create(config)
    try:
        await container.start()
        result = await container.wait(timeout=60)
        logs = await container.log(stdout=True, stderr=True)
        return result["StatusCode"], "".join(logs)
    finally:
        await container.delete(force=True)


def test_image_is_current_and_labelled_with_the_recipe_hash() -> None:
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", IMAGE],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert labels[RECIPE_LABEL] == recipe_hash()


@pytest.mark.parametrize("language", sorted(HELLO))
async def test_hello_world_runs_in_every_language_locked_down(
    docker: aiodocker.Docker, language: str, tmp_path: Path
) -> None:
    name, source = HELLO[language]
    (tmp_path / name).write_text(source)
    tmp_path.chmod(0o755)
    spec = LANGUAGES.by_name[language]
    steps = []
    if spec.compiled:
        steps.append(" ".join(spec.compile_argv([name])))
    steps.append(" ".join(spec.run_argv(name)))
    code, output = await run_in_image(
        docker, ["sh", "-c", " && ".join(steps)], binds=[f"{tmp_path}:/work:ro"]
    )
    assert (code, output.strip()) == (0, "hi")


@pytest.mark.parametrize("header", ["iostream", "bits/stdc++.h"])
async def test_cpp_compile_command_uses_the_images_precompiled_header(
    docker: aiodocker.Docker, header: str, tmp_path: Path
) -> None:
    """The .gch was built for exactly the flags of languages.toml: g++ takes it (`!` in -H)."""
    (tmp_path / "main.cpp").write_text(f"#include <{header}>\nint main(){{std::cout<<1;}}\n")
    tmp_path.chmod(0o755)
    argv = LANGUAGES.by_name["cpp"].compile_argv(["main.cpp"])
    code, output = await run_in_image(
        docker,
        ["sh", "-c", f"cd /tmp && {' '.join(argv)} -H -Winvalid-pch 2>&1 | head -1"],
        binds=[f"{tmp_path}:/work:ro"],
    )
    assert code == 0
    assert output.startswith("! /usr/") and output.strip().endswith(f"/{header}.gch"), output


@pytest.mark.parametrize("language", sorted(HELLO))
async def test_image_versions_match_the_languages_file(
    docker: aiodocker.Docker, language: str
) -> None:
    spec = LANGUAGES.by_name[language]
    code, output = await run_in_image(docker, list(spec.version_command))
    assert code == 0
    assert spec.version in output, f"{language}: expected {spec.version} in {output!r}"


async def test_container_is_non_root_read_only_and_offline(docker: aiodocker.Docker) -> None:
    probe = (
        "import os, socket\n"
        "print(os.getuid(), os.getgid())\n"
        "try:\n    open('/etc/x', 'w')\nexcept OSError as e:\n    print('rootfs', e.errno)\n"
        "s = socket.socket()\n"
        "try:\n    s.connect(('1.1.1.1', 53))\nexcept OSError as e:\n    print('net', e.errno)\n"
        "print(sorted(n for n in os.listdir('/sys/class/net')))\n"
    )
    code, output = await run_in_image(docker, ["python3", "-c", probe])
    assert code == 0
    assert output.split("\n")[:4] == ["65534 65534", "rootfs 30", "net 101", "['lo']"]


def test_image_has_no_setuid_binaries() -> None:
    found = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--user",
            "0:0",
            "--network",
            "none",
            IMAGE,
            "find",
            "/",
            "-xdev",
            "-perm",
            "/6000",
            "-type",
            "f",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found.strip() == ""


async def test_launcher_waits_for_its_line_then_execs_with_extra_args(
    docker: aiodocker.Docker,
) -> None:
    config = {
        "Image": IMAGE,
        "Cmd": ["/opt/ce/launch", "python3", "-c", "import sys; print('args', sys.argv[1:])"],
        "OpenStdin": True,
        "StdinOnce": True,
        "AttachStdin": True,
        "AttachStdout": True,
        **LOCKED_DOWN,
        "HostConfig": {"NetworkMode": "none", "ReadonlyRootfs": True},
    }
    container = await docker.containers.create(config)
    try:
        async with container.attach(stdin=True, stdout=True, stderr=True) as stream:
            await container.start()
            first = await stream.read_out()
            assert first is not None and first.data == b"\x1e[ce-ready]\n"
            state = (await container.show())["State"]
            assert state["Running"], "the launcher must hold the container until go"
            await stream.write_in(json.dumps({"argv": ["a b", "c"]}).encode() + b"\n")
            output = b""
            while (message := await stream.read_out()) is not None:
                output += message.data
        assert output == b"\x1e[ce-go]\nargs ['a b', 'c']\n"
    finally:
        await container.delete(force=True)


def test_engine_bootstrap_is_idempotent() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-engine.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "nothing to do" in result.stderr


def test_image_build_is_a_no_op_when_current() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ce_ws", "image"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "nothing to build" in result.stderr


def test_doctor_reports_every_check_and_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ce_ws", "doctor"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout
    for needed in ("engine", "cgroup", "runtimes", "runsc", "runtime image"):
        assert needed in result.stdout


def test_doctor_checks_the_egress_proxy_image_once_a_network_policy_is_set() -> None:
    def doctor(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ce_ws", "doctor"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, **env},
        )

    policy = json.dumps({"pypi": ["pypi.org:443"]})
    assert "egress proxy image" not in doctor().stdout
    found = doctor(CE_NETWORK__POLICIES=policy)
    assert "[ok  ] egress proxy image code-executor-proxy: current" in found.stdout, found.stdout
    missing = doctor(CE_NETWORK__POLICIES=policy, CE_NETWORK__PROXY_IMAGE="ce-no-such-proxy-image")
    assert missing.returncode == 1
    assert "egress proxy image ce-no-such-proxy-image: absent" in missing.stdout, missing.stdout


def test_doctor_names_the_runc_version_and_whether_it_carries_the_cve_2024_21626_fix() -> None:
    """This host's runc is Debian's 1.1.5 with the fix backported (named in its changelog)."""
    components = subprocess.run(
        ["docker", "version", "--format", "{{json .Server.Components}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    [runc] = [c for c in json.loads(components.stdout) if c["Name"] == "runc"]
    result = subprocess.run(
        [sys.executable, "-m", "ce_ws", "doctor"], capture_output=True, text=True, cwd=ROOT
    )
    [line] = [line for line in result.stdout.splitlines() if "CVE-2024-21626" in line]
    assert f"runc {runc['Version']}" in line, result.stdout
    assert line.startswith("[ok  ]") and "CVE-2024-21626 fixed" in line, result.stdout


def test_doctor_fails_with_the_fix_when_the_engine_is_missing() -> None:
    env = {**os.environ, "CE_SANDBOX__DOCKER_URL": "unix:///nonexistent.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "ce_ws", "doctor"], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert result.returncode == 1
    assert "fix: run `bash scripts/ensure-engine.sh`" in result.stdout
