"""Whether the runtime image still carries Debian's newest packages.

The image's installed versions are read with `dpkg-query` inside a throwaway
container of the image itself (`--network=none`, no user code): that is the
truth of what is in it, whoever built it and however, where a list recorded
in a label at build time would only say what the build meant to install.

The archive's versions come from the same mirror the build's debootstrap
uses: each suite's `InRelease` (its signature checked with `gpgv` against the
Debian archive keyring), then its `main` `Packages.xz`, checked against the
SHA-256 that `InRelease` lists and cached by that hash, so a second check
the same day only fetches the small signed file again. The newest version
of a package over bookworm, bookworm-updates and bookworm-security is the
one a fresh build installs.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
ARCHITECTURE = "amd64"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
CACHE_DIR = Path("/var/tmp/ce-archive-index")
_FETCH_TIMEOUT_S = 60.0


def archive_suites(suite: str) -> list[tuple[str, str]]:
    """(mirror, suite) of everything a fresh build installs from."""
    return [(MIRROR, suite), (MIRROR, f"{suite}-updates"), (SECURITY_MIRROR, f"{suite}-security")]


# -- Debian version ordering (deb-version(7)) --------------------------------


def _order(char: str) -> int:
    """A character's weight in the non-digit parts: `~` first, letters before the rest."""
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(left: str, right: str) -> int:
    """Compare an upstream version or a revision, alternating non-digits and digits."""
    while left or right:
        left_text = re.match(r"[^0-9]*", left)[0]  # type: ignore[index]
        right_text = re.match(r"[^0-9]*", right)[0]  # type: ignore[index]
        # The empty end sorts after `~` and before everything else.
        for a, b in zip(left_text + "\0", right_text + "\0", strict=False):
            weight_a = 0 if a == "\0" else _order(a)
            weight_b = 0 if b == "\0" else _order(b)
            if weight_a != weight_b:
                return -1 if weight_a < weight_b else 1
            if a == "\0" or b == "\0":
                break
        left, right = left[len(left_text) :], right[len(right_text) :]
        left_digits = re.match(r"[0-9]*", left)[0]  # type: ignore[index]
        right_digits = re.match(r"[0-9]*", right)[0]  # type: ignore[index]
        left_number, right_number = int(left_digits or 0), int(right_digits or 0)
        if left_number != right_number:
            return -1 if left_number < right_number else 1
        left, right = left[len(left_digits) :], right[len(right_digits) :]
    return 0


def _split(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as `left` is older than, equal to or newer than `right` (dpkg's order)."""
    left_epoch, left_upstream, left_revision = _split(left)
    right_epoch, right_upstream, right_revision = _split(right)
    if left_epoch != right_epoch:
        return -1 if left_epoch < right_epoch else 1
    return _compare_part(left_upstream, right_upstream) or _compare_part(
        left_revision, right_revision
    )


# -- what the image has, what the archive offers -----------------------------


@dataclass(frozen=True)
class PendingUpdate:
    """A package of the image that the archive has a newer version of."""

    package: str
    installed: str
    available: str

    def __str__(self) -> str:
        return f"{self.package} {self.installed} -> {self.available}"


def pending_updates(installed: dict[str, str], archive: dict[str, str]) -> list[PendingUpdate]:
    """Every installed package whose archive version is newer, by name."""
    return [
        PendingUpdate(name, version, archive[name])
        for name, version in sorted(installed.items())
        if name in archive and compare_versions(version, archive[name]) < 0
    ]


def parse_packages_index(text: str, into: dict[str, str] | None = None) -> dict[str, str]:
    """Package name -> newest version, from a `Packages` index (merged into `into`)."""
    newest = {} if into is None else into
    name = version = None
    for line in [*text.splitlines(), ""]:
        if not line:
            if (
                name
                and version
                and (name not in newest or compare_versions(newest[name], version) < 0)
            ):
                newest[name] = version
            name = version = None
        elif line.startswith("Package: "):
            name = line[len("Package: ") :].strip()
        elif line.startswith("Version: "):
            version = line[len("Version: ") :].strip()
    return newest


def parse_dpkg_query(text: str) -> dict[str, str]:
    """Package name -> version from `dpkg-query -W -f '${Package}\\t${Version}\\n'`."""
    pairs = (line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    return {name: version for name, version in pairs if version}


def installed_versions(image: str) -> dict[str, str]:
    """The image's installed packages, read inside a throwaway container of it."""
    result = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network=none",
            "--user",
            "65534:65534",
            "--entrypoint",
            "dpkg-query",
            image,
            "-W",
            "-f",
            "${Package}\t${Version}\n",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"dpkg-query in {image} failed: {result.stderr.strip()[-300:]}")
    return parse_dpkg_query(result.stdout)


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(
        url, timeout=_FETCH_TIMEOUT_S
    ) as response:  # integrity: the signed InRelease
        data: bytes = response.read()
        return data


def _verified_release(mirror: str, suite: str) -> str:
    """The suite's `InRelease`, its signature checked against the archive keyring."""
    signed = _fetch(f"{mirror}/dists/{suite}/InRelease")
    with tempfile.NamedTemporaryFile(suffix=".InRelease") as file:
        file.write(signed)
        file.flush()
        check = subprocess.run(
            ["gpgv", "--keyring", str(KEYRING), file.name], capture_output=True, check=False
        )
    if check.returncode != 0:
        raise RuntimeError(f"{mirror} {suite}: InRelease signature does not verify")
    return signed.decode()


def _index_sha256(release: str, suite: str) -> str:
    wanted = f"main/binary-{ARCHITECTURE}/Packages.xz"
    in_sha256 = False
    for line in release.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.startswith("SHA256:")
        elif in_sha256 and line.split()[-1] == wanted:
            return line.split()[0]
    raise RuntimeError(f"{suite}: InRelease lists no {wanted}")


def _packages_index(mirror: str, suite: str) -> str:
    """The suite's `main` index, fetched unless the cache has the one InRelease names."""
    sha256 = _index_sha256(_verified_release(mirror, suite), suite)
    cached = CACHE_DIR / f"{suite}-{sha256}.xz"
    if cached.exists():
        data = cached.read_bytes()
    else:
        data = _fetch(f"{mirror}/dists/{suite}/main/binary-{ARCHITECTURE}/Packages.xz")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise RuntimeError(f"{suite}: Packages.xz does not match its InRelease hash")
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        for old in CACHE_DIR.glob(f"{suite}-*.xz"):
            old.unlink(missing_ok=True)
        cached.write_bytes(data)
    return lzma.decompress(data).decode("utf-8", "replace")


def archive_versions(suite: str) -> dict[str, str]:
    """Package name -> the newest version a fresh build of `suite` would install."""
    newest: dict[str, str] = {}
    for mirror, name in archive_suites(suite):
        parse_packages_index(_packages_index(mirror, name), into=newest)
    return newest
