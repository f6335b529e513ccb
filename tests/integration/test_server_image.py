"""The server's own image (`python -m ce_ws server-image`), run as the README says.

It drives this machine's engine through the mounted socket, reads run
cgroups through the mounted `/sys/fs/cgroup` (so CPU time is enforced), and
keeps its staging folders at the same path inside and outside, so the
engine's bind mounts find the program. Stopped as `docker stop` does, it
leaves no container and no staging folder. Like every server of the suite,
it runs through the spec recorder (mounted in from `tests/`), so each box it
creates is checked against the container spec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ce_ws.config import Settings
from ce_ws.sandbox.docker import SHUTDOWN_SWEEP
from ce_ws.sandbox.engine import OWNER_LABEL
from ce_ws.server_image import SERVER_IMAGE, build_server_image
from tests import spec_recorder
from tests.helpers import free_port, wait_healthy
from tests.leftovers import TEST_SERVER_ID

ROOT = Path(__file__).resolve().parents[2]

_START_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def server_image() -> str:
    build_server_image(Settings().sandbox.image)
    return SERVER_IMAGE


@pytest.fixture
def state_folder() -> Iterator[Path]:
    """The server's state and staging root, at one path inside and outside."""
    folder = Path(tempfile.mkdtemp(prefix="server-image-test-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def docker(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=False)


async def test_the_server_image_runs_programs_on_the_hosts_engine(
    server_image: str, state_folder: Path
) -> None:
    port = free_port()
    name = f"{TEST_SERVER_ID}-image-{port}"
    records = Path(os.environ[spec_recorder.RECORD_ENV]).parent
    started = docker(
        "run", "--detach", "--name", name, "--network", "host",
        "--volume", "/var/run/docker.sock:/var/run/docker.sock",
        "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--volume", f"{state_folder}:{state_folder}", "--workdir", str(state_folder),
        "--env", f"CE_SANDBOX__STAGING_ROOT={state_folder}",
        "--env", f"CE_PORT={port}", "--env", f"CE_SERVER_ID={name}",
        # The suite's recorder: the image's own server, with the creation hook.
        "--volume", f"{ROOT / 'tests'}:/opt/code-executor/app/tests:ro",
        "--volume", f"{records}:{records}",
        "--env", f"{spec_recorder.RECORD_ENV}={os.environ[spec_recorder.RECORD_ENV]}",
        "--entrypoint", "python3", server_image, "-m", "tests.spec_recorder", "serve",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, exit_code=lambda: None, timeout_s=_START_TIMEOUT_S)
        async with aiohttp.ClientSession() as http:
            hello = await _execute(http, url, language="python", code="print(6 * 7)")
            spin = await _execute(
                http, url, language="c", code="int main(void) { for (;;); }",
                limits={"cpu_ms": 1000},
            )  # fmt: skip
        stopped = docker("stop", "--time", "30", name)
        assert stopped.returncode == 0, stopped.stderr
        state = docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        log = docker("logs", name).stderr
    finally:
        docker("rm", "--force", name)
    assert (hello["status"], hello["stdout"]) == ("exited", "42\n"), hello
    assert (spin["status"], spin.get("limit")) == ("timeout", "cpu"), spin
    assert state == "0", log[-4000:]
    for sign in (SHUTDOWN_SWEEP, "Traceback (most recent call last)"):
        assert sign not in log, f"the server logged {sign!r}:\n{log[-4000:]}"
    assert not list(state_folder.glob("ce-*")), "staging folders outlived the server"
    left = docker("ps", "--all", "--quiet", "--filter", f"label={OWNER_LABEL}={name}").stdout
    assert not left.split(), f"its containers outlived it: {left}"


async def _execute(http: aiohttp.ClientSession, url: str, **body: object) -> dict[str, object]:
    async with http.post(f"{url}/api/v1/execute", json=body) as response:
        result: dict[str, object] = await response.json()
        assert response.status == 200, result
        return result
