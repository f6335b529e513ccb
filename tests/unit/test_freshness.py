"""Debian version ordering and the image-versus-archive comparison (pure logic)."""

from __future__ import annotations

import functools
import itertools
import subprocess
from datetime import UTC, datetime

import pytest

from ce_ws.doctor import days_since
from ce_ws.freshness import (
    PendingUpdate,
    compare_versions,
    parse_dpkg_query,
    parse_packages_index,
    pending_updates,
)
from ce_ws.image import parse_created
from ce_ws.sandbox.pool import MemoryPressure, memory_pressure

# Versions in the shapes bookworm uses: epochs, revisions, +debNuM, binNMUs, tildes.
VERSIONS = [
    "0", "1.0", "1.0-1", "1.0-2", "1:0.9", "2:0.1", "1.0~rc1", "1.0~rc1-1", "1.0~", "1.0~~",
    "1.0+dfsg-1", "1.0a", "1.0.1", "1.0-1.1", "1.0-1~bpo12+1", "2.36-9", "2.36-9+deb12u9",
    "2.36-9+deb12u10", "2.36-9+deb12u14", "5.2.15-2+b2", "5.2.15-2+b13", "10.2.1-6",
    "20230311+deb12u1", "20250419~deb12u2", "1.0.9-2+b6", "1.0.9-2+deb12u1",
]  # fmt: skip


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("2.36-9+deb12u9", "2.36-9+deb12u10"),  # numbers, not text
        ("1.0~rc1", "1.0"),  # a tilde sorts before the end
        ("1.0", "1.0a"),
        ("1.0", "1:0.1"),  # the epoch wins
        ("5.2.15-2+b2", "5.2.15-2+b13"),
        ("20230311+deb12u1", "20250419~deb12u2"),
        ("1.0.9-2+b6", "1.0.9-2+deb12u1"),  # "b" before "d"
    ],
)
def test_known_pairs_order(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1
    assert compare_versions(newer, newer) == 0


def test_sorting_agrees_with_dpkg() -> None:
    """`dpkg --compare-versions` (the order the image's own dpkg applies) confirms each step.

    Sorted by `compare_versions`, each version must be dpkg-older than the
    next (an order is a chain, so its neighbours prove it whole).
    """
    ordered = sorted(VERSIONS, key=functools.cmp_to_key(compare_versions))
    for left, right in itertools.pairwise(ordered):
        check = subprocess.run(["dpkg", "--compare-versions", left, "lt", right])
        assert check.returncode == 0, f"dpkg does not put {left} before {right}"


def test_the_index_keeps_the_newest_version_of_each_package() -> None:
    index = (
        "Package: libc6\nVersion: 2.36-9+deb12u9\nArchitecture: amd64\n\n"
        "Package: bash\nVersion: 5.2.15-2+b2\n\n"
    )
    security = "Package: libc6\nVersion: 2.36-9+deb12u14\nArchitecture: amd64\n"
    newest = parse_packages_index(security, into=parse_packages_index(index))
    assert newest == {"libc6": "2.36-9+deb12u14", "bash": "5.2.15-2+b2"}
    # An older entry read later does not win.
    assert parse_packages_index(index, into=dict(newest))["libc6"] == "2.36-9+deb12u14"


def test_pending_updates_name_only_packages_older_than_the_archive() -> None:
    installed = parse_dpkg_query("bash\t5.2.15-2+b2\nlibc6\t2.36-9+deb12u14\nlocal-only\t1.0\n")
    archive = {"bash": "5.2.15-2+b13", "libc6": "2.36-9+deb12u10", "coreutils": "9.1-1"}
    assert pending_updates(installed, archive) == [
        PendingUpdate("bash", "5.2.15-2+b2", "5.2.15-2+b13")
    ]


GIB = 1024**3


@pytest.mark.parametrize(
    ("available", "was", "expected"),
    [
        (4 * GIB, MemoryPressure.NONE, MemoryPressure.NONE),
        (GIB // 2, MemoryPressure.NONE, MemoryPressure.SHED),  # below the floor
        (GIB // 2, MemoryPressure.HOLD, MemoryPressure.SHED),
        (GIB + GIB // 10, MemoryPressure.SHED, MemoryPressure.HOLD),  # not far enough above
        (GIB + GIB // 10, MemoryPressure.NONE, MemoryPressure.NONE),  # never got low
        (GIB + GIB // 2, MemoryPressure.HOLD, MemoryPressure.NONE),  # 25% above: refill
    ],
)
def test_memory_pressure_sheds_below_the_floor_and_resumes_well_above(
    available: int, was: MemoryPressure, expected: MemoryPressure
) -> None:
    assert memory_pressure(available, GIB, was=was) is expected


def test_no_floor_means_no_pressure() -> None:
    assert memory_pressure(0, 0, was=MemoryPressure.SHED) is MemoryPressure.NONE


def test_image_age_in_days() -> None:
    built = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert days_since(built, datetime(2026, 11, 28, 0, 0, tzinfo=UTC)) == 7.5
    assert days_since(built, datetime(2026, 11, 20, 11, 0, tzinfo=UTC)) == 0.0


def test_the_engines_created_stamp_parses_to_utc() -> None:
    assert parse_created("2026-12-02T01:08:43.123456789Z") == datetime(
        2026, 12, 2, 1, 8, 43, 123456, tzinfo=UTC
    )
    assert parse_created("2026-12-02T01:08:43Z") == datetime(2026, 12, 2, 1, 8, 43, tzinfo=UTC)
