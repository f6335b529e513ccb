"""The doctor's verdict on runc and CVE-2024-21626, from its version and Debian changelog."""

from __future__ import annotations

import pytest

from ce_ws.runc import cve_2024_21626

DEBIAN_FIXED = """runc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high

  * Team upload.
  * CVE-2024-21626: several container breakouts due to internally leaked fds

 -- Shengjing Zhu <zhsj@debian.org>  Fri, 02 Feb 2024 21:53:05 +0800

runc (1.1.5+ds1-1) unstable; urgency=medium

  * New upstream version 1.1.5+ds1
"""
DEBIAN_BEFORE = DEBIAN_FIXED[DEBIAN_FIXED.index("runc (1.1.5+ds1-1) ") :]


@pytest.mark.parametrize(
    ("version", "package", "changelog", "fixed"),
    [
        # Debian 12 backported the fix to 1.1.5: its changelog says so.
        ("1.1.5+ds1", "1.1.5+ds1-1+deb12u1", DEBIAN_FIXED, True),
        # The package before the backport.
        ("1.1.5+ds1", "1.1.5+ds1-1", DEBIAN_BEFORE, False),
        # A changelog that is not this runc's (another package version) proves nothing.
        ("1.1.5+ds1", "1.1.5+ds1-1", DEBIAN_FIXED, False),
        ("1.1.5", "v1.1.5-0-gf19387a", None, False),
        ("1.1.11", "v1.1.11-0-g4bccb38", None, False),
        # Upstream fixed it in 1.1.12.
        ("1.1.12", "v1.1.12-0-g51d5e94", None, True),
        ("1.2.0-rc.1", "v1.2.0-rc.1-0-g275e6d8", None, True),
        ("1.10.0", "", None, True),
        # A version the doctor cannot read is not called safe.
        ("", "", DEBIAN_FIXED, False),
        ("unknown", "", None, False),
    ],
)
def test_the_verdict_reads_the_version_and_this_packages_changelog(
    version: str, package: str, changelog: str | None, fixed: bool
) -> None:
    verdict = cve_2024_21626(version, package, changelog)
    assert verdict.fixed is fixed, verdict.reason
    assert verdict.reason


def test_an_unreadable_version_is_said_to_be_unknown() -> None:
    assert "unknown" in cve_2024_21626("", "", None).reason
    assert "vulnerable" in cve_2024_21626("1.1.11", "", None).reason
