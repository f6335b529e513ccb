"""Whether the engine's runc carries the fix for CVE-2024-21626 (a container escape).

Upstream fixed it in 1.1.12. Distributions backport the fix to older
versions without changing the upstream number (Debian 12: 1.1.5+ds1-1+deb12u1),
so a version below 1.1.12 counts as fixed when the Debian changelog of that
very package names the CVE.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from pathlib import Path

CVE = "CVE-2024-21626"
FIXED_UPSTREAM = (1, 1, 12)
DEBIAN_CHANGELOG = Path("/usr/share/doc/runc/changelog.Debian.gz")
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
#: The first line of a Debian changelog: `runc (<package version>) <suite>; urgency=...`.
_NEWEST_ENTRY = re.compile(r"\s*runc \(([^)\s]+)\)")


@dataclass(frozen=True)
class Verdict:
    fixed: bool
    reason: str


def cve_2024_21626(version: str, package: str, changelog: str | None) -> Verdict:
    """The verdict on a runc of upstream `version` built as `package` (its Debian
    version, which runc reports as its commit), given the Debian changelog, if any."""
    found = _VERSION.match(version)
    if found is None:
        return Verdict(False, f"unknown: version {version!r} not understood")
    if tuple(int(part) for part in found.groups()) >= FIXED_UPSTREAM:
        return Verdict(True, "fixed (upstream 1.1.12 or later)")
    if changelog is not None and _backported(changelog, package):
        return Verdict(True, f"fixed (backported: named in the Debian changelog of {package})")
    return Verdict(False, "vulnerable: older than 1.1.12 and no backported fix found")


def _backported(changelog: str, package: str) -> bool:
    """Whether this changelog is `package`'s own (its newest entry) and names the CVE."""
    newest = _NEWEST_ENTRY.match(changelog)
    return newest is not None and newest[1] == package and CVE in changelog


def debian_changelog() -> str | None:
    """The installed Debian runc package's changelog, or None without one."""
    try:
        with gzip.open(DEBIAN_CHANGELOG, "rt", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None
