"""The images: their recipe hashes and their registry-free builds.

Called by `python -m ce_ws image` (from `make run`/`make test`) and by the
doctor and readiness checks, which compare an image's `ce.recipe` label with
the hash of its recipe in this checkout. Two recipes: the runtime image
(`docker/runtime/`) and the egress proxy's Squid image (`docker/proxy/`).

The build never pulls from a registry: debootstrap installs Debian bookworm
with the packages of the recipe's `packages.txt` into a folder, then
upgrades it from bookworm-updates and bookworm-security, `docker import`
turns the folder into a base image, and `docker build` of the recipe's
`Dockerfile` adds the user setup and the entry script on top.

A build happens when the recipe changed and also when the archive has newer
versions of packages in the image (`ce_ws.freshness`): Debian's security
updates reach the image at the next `python -m ce_ws image`. The base is
reused only while it has no pending update either; otherwise it is
debootstrapped again and its tag carries the new refresh stamp.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ce_ws.freshness import (
    MIRROR,
    PendingUpdate,
    archive_suites,
    archive_versions,
    installed_versions,
    pending_updates,
)

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
RECIPE_LABEL = "ce.recipe"
SUITE = "bookworm"


@dataclass(frozen=True, slots=True)
class Recipe:
    """One image's recipe folder and the files whose content makes the image."""

    folder: Path
    files: tuple[str, ...]


RUNTIME_RECIPE = Recipe(
    DOCKER_DIR / "runtime",
    ("packages.txt", "Dockerfile", "launch", "launch.js", "launch.rb", "ce_inline_plot.py"),
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
    """Hash of the debootstrapped base's recipe: suite, mirror and packages.

    The base's tag is `<this hash>-<refresh stamp>`: the stamp (when it was
    debootstrapped) changes with every refresh that brought new versions.
    """
    digest = hashlib.sha256(
        f"{SUITE}\0{MIRROR}\0".encode() + (recipe.folder / "packages.txt").read_bytes()
    )
    return digest.hexdigest()[:16]


def refresh_stamp(now: datetime | None = None) -> str:
    """The UTC minute of a debootstrap, as the second half of the base's tag."""
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%MZ")


def image_pending_updates(image: str, archive: dict[str, str] | None = None) -> list[PendingUpdate]:
    """The image's packages that the archive (fetched unless given) has newer versions of."""
    return pending_updates(installed_versions(image), archive or archive_versions(SUITE))


def _inspect(image: str, template: str) -> str | None:
    """One field of a local image (a Go template), or None when it is absent."""
    result = subprocess.run(
        ["docker", "image", "inspect", "-f", template, image],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def image_created(image: str) -> datetime | None:
    """When the local image was built, or None if it is absent."""
    created = _inspect(image, "{{ .Created }}")
    return parse_created(created) if created is not None else None


def parse_created(stamp: str) -> datetime:
    """The engine's `Created` (UTC, up to nanoseconds) as a datetime (microseconds)."""
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


def local_image_id(image: str) -> str | None:
    """The id the name points at locally, or None if the engine has no such image."""
    return _inspect(image, "{{ .Id }}")


def image_recipe_label(image: str) -> str | None:
    """The recipe hash the local image was built from, or None if absent."""
    return _inspect(image, f'{{{{ index .Config.Labels "{RECIPE_LABEL}" }}}}')


class _Progress:
    """Prints each build stage with the time elapsed since the build began."""

    def __init__(self) -> None:
        self._began = time.monotonic()

    def stage(self, text: str) -> None:
        elapsed = time.monotonic() - self._began
        print(f"[image {elapsed:6.1f}s] {text}", file=sys.stderr, flush=True)


def _run(argv: list[str], **kwargs: object) -> None:
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def newest_base(image: str, recipe: Recipe) -> str | None:
    """The most recently refreshed base of this recipe, if any is local."""
    result = subprocess.run(
        ["docker", "image", "ls", "--format", "{{ .Tag }}", f"{image}-base"],
        capture_output=True,
        text=True,
        check=False,
    )
    prefix = f"{base_hash(recipe)}-"
    tags = sorted(tag for tag in result.stdout.split() if tag.startswith(prefix))
    return f"{image}-base:{tags[-1]}" if tags else None


def build(image: str, *, recipe: Recipe = RUNTIME_RECIPE, force: bool = False) -> bool:
    """Build the image unless its recipe matches and nothing is pending; True when built."""
    wanted = recipe_hash(recipe)
    progress = _Progress()
    try:
        archive = archive_versions(SUITE)
    except (OSError, RuntimeError) as exc:
        # Offline, the recipe check alone still decides; the doctor says so too.
        progress.stage(f"cannot read Debian's index ({exc}); checking the recipe only")
        archive = {}
    if not force and image_recipe_label(image) == wanted:
        progress.stage(f"{image}: recipe {wanted} is current; comparing its packages with Debian's")
        pending = image_pending_updates(image, archive) if archive else []
        if not pending:
            progress.stage(
                f"{image} is current (recipe {wanted}, no pending update); nothing to build"
            )
            return False
        progress.stage(f"{len(pending)} newer in the archive: {', '.join(map(str, pending[:8]))}")
    base = newest_base(image, recipe)
    if base is not None and not (archive and image_pending_updates(base, archive)):
        progress.stage(f"reusing base image {base} (same package list, no pending update)")
    else:
        stale, base = base, f"{image}-base:{base_hash(recipe)}-{refresh_stamp()}"
        _debootstrap_base(base, packages(recipe), progress)
        if stale is not None and stale != base:
            # Untag the old base; its layers stay while an old image still uses them.
            subprocess.run(["docker", "image", "rm", stale], capture_output=True, check=False)
    replaced = local_image_id(image)
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
    if replaced is not None and replaced != local_image_id(image):
        # The old image, now nameless: gone unless containers (a pool's last
        # idle boxes, live runs) still use it or another name points at it.
        removal = subprocess.run(["docker", "image", "rm", replaced], capture_output=True)
        if removal.returncode == 0:
            progress.stage(f"removed the old image {replaced[:19]}")
        else:
            progress.stage(
                f"kept the old image {replaced[:19]}: still in use; `docker image rm` it later"
            )
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
                MIRROR,
            ]
        )
        progress.stage("upgrade from the updates and security suites")
        _upgrade_in_chroot(Path(rootfs))
        progress.stage(f"docker import as {base}")
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        _run(["docker", "import", "-", base], stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            raise SystemExit("tar of the debootstrap folder failed")


def _upgrade_in_chroot(rootfs: Path) -> None:
    """Bring the debootstrapped folder up to bookworm-updates and bookworm-security."""
    sources = "".join(f"deb {mirror} {suite} main\n" for mirror, suite in archive_suites(SUITE))
    (rootfs / "etc" / "apt" / "sources.list").write_text(sources)
    script = (
        "set -eu; export DEBIAN_FRONTEND=noninteractive; apt-get update -q;"
        " apt-get -y -q --no-install-recommends dist-upgrade; apt-get clean;"
        " rm -rf /var/lib/apt/lists/*"
    )
    _run(["chroot", str(rootfs), "/bin/sh", "-c", script])
