"""The runtime image follows Debian's updates: stale is reported, then rebuilt.

The stale image is the shared runtime image with one package's recorded
version pushed back (its dpkg status edited in a layer on top), under a tag
of this test's own: the real default tag is never rebuilt here. A base some
new-style build already debootstrapped for this recipe is lent to it (build()
still checks that base's own packages), so the test costs a docker build,
not a debootstrap, whenever one exists.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from ce_ws.freshness import archive_versions, installed_versions
from ce_ws.image import SUITE, base_hash, build, image_pending_updates
from ce_ws.image import local_image_id as image_id

STALE_TAG = "code-executor-runtime-freshness-test"
FAKE_OLD_BASH = "5.0-1"
STALE_RECIPE = f"""FROM code-executor-runtime
USER 0:0
RUN sed -i '/^Package: bash$/,/^$/ s/^Version: .*/Version: {FAKE_OLD_BASH}/' /var/lib/dpkg/status
USER 65534:65534
"""


def lend_a_base(image: str) -> str | None:
    """Tag an existing base of this recipe as `image`'s own; the tag given, or None."""
    listing = subprocess.run(
        ["docker", "image", "ls", "--format", "{{ .Repository }}:{{ .Tag }}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    bases = sorted(name for name in listing if name.split(":")[-1].startswith(f"{base_hash()}-"))
    if not bases:
        return None
    lent = f"{image}-base:{bases[-1].split(':')[-1]}"
    subprocess.run(["docker", "tag", bases[-1], lent], check=True)
    return lent


def doctor_output(image: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "ce_ws", "doctor"],
        env={**os.environ, "CE_SANDBOX__IMAGE": image},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return result.stdout + result.stderr


async def test_an_image_behind_the_archive_is_reported_and_rebuilt() -> None:
    subprocess.run(
        ["docker", "build", "--network=none", "-q", "-t", STALE_TAG, "-"],
        input=STALE_RECIPE,
        text=True,
        check=True,
        capture_output=True,
    )
    lent = lend_a_base(STALE_TAG)
    try:
        assert (await asyncio.to_thread(installed_versions, STALE_TAG))["bash"] == FAKE_OLD_BASH
        newest_bash = (await asyncio.to_thread(archive_versions, SUITE))["bash"]
        before = await asyncio.to_thread(doctor_output, STALE_TAG)
        assert f"[WARN] runtime image {STALE_TAG}:" in before, before
        assert f"bash {FAKE_OLD_BASH} -> {newest_bash}" in before, before
        assert "python -m ce_ws image" in before

        stale_id = image_id(STALE_TAG)
        assert await asyncio.to_thread(build, STALE_TAG), "a stale image must be rebuilt"
        assert image_id(STALE_TAG) not in {None, stale_id}
        assert image_id(stale_id) is None, "the replaced image, unused, is removed"
        assert (await asyncio.to_thread(installed_versions, STALE_TAG))["bash"] == newest_bash
        assert await asyncio.to_thread(image_pending_updates, STALE_TAG) == []
        after = await asyncio.to_thread(doctor_output, STALE_TAG)
        assert "Debian updates pending" not in after, after
        assert f"runtime image {STALE_TAG}: fresh, no Debian update pending" in after, after
        assert not await asyncio.to_thread(build, STALE_TAG), "a fresh image is not rebuilt"
    finally:
        bases = subprocess.run(
            [
                "docker",
                "image",
                "ls",
                "--format",
                "{{ .Repository }}:{{ .Tag }}",
                f"{STALE_TAG}-base",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        for name in {STALE_TAG, *bases, *([lent] if lent else [])}:
            subprocess.run(["docker", "image", "rm", name], capture_output=True, check=False)
