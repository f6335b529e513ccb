"""The images: their recipe hashes and their registry-free builds.

Called by `python -m ce_ws image` (from `make run`/`make test`) and by the
doctor and readiness checks, which compare an image's `ce.recipe` label with
the hash of its recipe in this checkout. Two recipes: the runtime image
(`docker/runtime/`) and the egress proxy's Squid image (`docker/proxy/`).

The build never pulls from a registry: debootstrap installs Debian bookworm
with the packages of the recipe's `packages.txt` into a folder, `docker
import` turns the folder into a base image, and `docker build` of the
recipe's `Dockerfile` adds the user setup and the entry script on top.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
RECIPE_LABEL = "ce.recipe"
SUITE = "bookworm"


@dataclass(frozen=True, slots=True)
class Recipe:
    """One image's recipe folder and the files whose content makes the image."""

    folder: Path
    files: tuple[str, ...]


RUNTIME_RECIPE = Recipe(
    DOCKER_DIR / "runtime", ("packages.txt", "Dockerfile", "launch", "ce_inline_plot.py")
)
PROXY_RECIPE = Recipe(DOCKER_DIR / "proxy", ("packages.txt", "Dockerfile", "start"))


def recipe_hash(recipe: Recipe = RUNTIME_RECIPE) -> str:
    """Hash every file of the recipe; called before deciding to rebuild."""
    digest = hashlib.sha256()
    for name in recipe.files:
        digest.update(name.encode() + b"\0" + (recipe.folder / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def packages(recipe: Recipe = RUNTIME_RECIPE) -> list[str]:
    """The Debian packages of the image, from the single list."""
    lines = (recipe.folder / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def base_hash(recipe: Recipe = RUNTIME_RECIPE) -> str:
    """Hash of what the debootstrapped base depends on: suite and packages."""
    digest = hashlib.sha256(SUITE.encode() + b"\0" + (recipe.folder / "packages.txt").read_bytes())
    return digest.hexdigest()[:16]


def image_exists(image: str) -> bool:
    """Whether the engine has this image locally."""
    result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return result.returncode == 0


def image_recipe_label(image: str) -> str | None:
    """The recipe hash the local image was built from, or None if absent."""
    result = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "-f",
            f'{{{{ index .Config.Labels "{RECIPE_LABEL}" }}}}',
            image,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


class _Progress:
    """Prints each build stage with the time elapsed since the build began."""

    def __init__(self) -> None:
        self._began = time.monotonic()

    def stage(self, text: str) -> None:
        elapsed = time.monotonic() - self._began
        print(f"[image {elapsed:6.1f}s] {text}", file=sys.stderr, flush=True)


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def build(image: str, *, recipe: Recipe = RUNTIME_RECIPE, force: bool = False) -> bool:
    """Build the image unless its label already matches; True when built."""
    wanted = recipe_hash(recipe)
    progress = _Progress()
    if not force and image_recipe_label(image) == wanted:
        progress.stage(f"{image} is current (recipe {wanted}); nothing to build")
        return False
    base = f"{image}-base:{base_hash(recipe)}"
    if not image_exists(base):
        _debootstrap_base(base, packages(recipe), progress)
    else:
        progress.stage(f"reusing base image {base} (same package list)")
    progress.stage(f"docker build {image} on top of {base}")
    _run(
        [
            "docker",
            "build",
            "--network=none",
            "--build-arg",
            f"BASE={base}",
            "--label",
            f"{RECIPE_LABEL}={wanted}",
            "-t",
            image,
            str(recipe.folder),
        ]
    )
    progress.stage(f"built {image} (recipe {wanted})")
    return True


def _debootstrap_base(base: str, package_names: list[str], progress: _Progress) -> None:
    if shutil.which("debootstrap") is None:
        raise SystemExit("debootstrap is missing: run scripts/ensure-engine.sh as root first")
    with tempfile.TemporaryDirectory(prefix="ce-rootfs-", dir="/var/tmp") as rootfs:
        progress.stage(f"debootstrap {SUITE} with {len(package_names)} packages into {rootfs}")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(package_names)}",
                SUITE,
                rootfs,
            ]
        )
        progress.stage(f"docker import as {base}")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "-", base], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise SystemExit("tar of the debootstrap folder failed")
