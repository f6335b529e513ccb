"""The server itself as an image, built without a registry (`python -m ce_ws server-image`).

The build container has no network, so what it installs comes in its
context: the server's dependencies as wheels that pip downloads here on the
host (for the image's Python 3.11 on x86-64, whatever Python runs this), and
the checkout's `ce_ws/`, `static/` and `docker/` folders. Its base is the
runtime image's debootstrapped Debian root, which has Python 3.11 already,
so no second debootstrap is needed (`python -m ce_ws image` made it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from ce_ws.image import DOCKER_DIR, RUNTIME_RECIPE, newest_base

ROOT = DOCKER_DIR.parent
SERVER_IMAGE = "code-executor-server"
#: What of the checkout the server needs at run time.
_APP_PARTS = ("ce_ws", "static", "docker")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules")
#: The image's interpreter, Debian bookworm's python3 3.11.2 (its updates keep
#: that version), for pip's choice of wheels.
_TARGET = ("--python-version", "3.11.2", "--implementation", "cp", "--abi", "cp311",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
           "--platform", "any")  # fmt: skip


#: Needed by the requirements under Python 3.11.3 only (aiohttp's and redis's
#: `python_full_version < "3.11.3"`), which the image's 3.11.2 is. `pip
#: download` judges such markers by the host's own interpreter, whatever
#: `--python-version` says, so they are asked for by name.
_BELOW_3_11_3 = ["async-timeout>=4.0.3"]


def dependencies() -> list[str]:
    """The server's requirements, as pyproject.toml names them, and what 3.11.2 adds."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        required: list[str] = tomllib.load(file)["project"]["dependencies"]
    return [*required, *_BELOW_3_11_3]


def build_server_image(runtime_image: str, tag: str = SERVER_IMAGE) -> None:
    """Download the wheels, gather the app, `docker build` it on the runtime's base."""
    began = time.monotonic()

    def stage(text: str) -> None:
        print(
            f"[server-image {time.monotonic() - began:5.1f}s] {text}", file=sys.stderr, flush=True
        )

    base = newest_base(runtime_image, RUNTIME_RECIPE)
    if base is None:
        raise SystemExit(
            f"no base image of {runtime_image} here: run `python -m ce_ws image` first"
        )
    with tempfile.TemporaryDirectory(prefix="server-image-") as folder:
        context = Path(folder)
        required = dependencies()
        (context / "requirements.txt").write_text("\n".join(required) + "\n")
        stage(f"downloading wheels for {len(required)} requirements (Python 3.11, x86-64)")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
             *_TARGET, "--dest", str(context / "wheels"), "-r", str(context / "requirements.txt")],
            check=True,
        )  # fmt: skip
        for part in _APP_PARTS:
            shutil.copytree(ROOT / part, context / "app" / part, ignore=_IGNORED)
        shutil.copy(DOCKER_DIR / "server" / "Dockerfile", context / "Dockerfile")
        stage(f"docker build {tag} on top of {base}")
        subprocess.run(
            ["docker", "build", "--quiet", "--force-rm", "--network=none", "--build-arg", f"BASE={base}",
             "-t", tag, str(context)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    stage(f"built {tag}")
