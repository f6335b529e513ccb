"""The runtime image follows Debian's updates: stale is reported, then rebuilt.

The stale image is the shared runtime image with one package's recorded
version pushed back (its dpkg status edited in a layer on top), under a tag
of this test's own: the real default tag is never rebuilt here. Its base is
kept between runs (like any build's base) so a rerun costs a docker build.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from ce_ws.freshness import archive_versions, installed_versions
from ce_ws.image import SUITE, build, image_pending_updates

STALE_TAG = "code-executor-runtime-freshness-test"
FAKE_OLD_BASH = "5.0-1"
STALE_RECIPE = f"""FROM code-executor-runtime
USER 0:0
RUN sed -i '/^Package: bash$/,/^$/ s/^Version: .*/Version: {FAKE_OLD_BASH}/' /var/lib/dpkg/status
USER 65534:65534
"""


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
    try:
        assert (await asyncio.to_thread(installed_versions, STALE_TAG))["bash"] == FAKE_OLD_BASH
        newest_bash = (await asyncio.to_thread(archive_versions, SUITE))["bash"]
        before = await asyncio.to_thread(doctor_output, STALE_TAG)
        assert f"[WARN] runtime image {STALE_TAG}:" in before, before
        assert f"bash {FAKE_OLD_BASH} -> {newest_bash}" in before, before
        assert "python -m ce_ws image" in before

        assert await asyncio.to_thread(build, STALE_TAG), "a stale image must be rebuilt"
        assert (await asyncio.to_thread(installed_versions, STALE_TAG))["bash"] == newest_bash
        assert await asyncio.to_thread(image_pending_updates, STALE_TAG) == []
        after = await asyncio.to_thread(doctor_output, STALE_TAG)
        assert "Debian updates pending" not in after, after
        assert f"runtime image {STALE_TAG}: no Debian update pending" in after, after
        assert not await asyncio.to_thread(build, STALE_TAG), "a fresh image is not rebuilt"
    finally:
        subprocess.run(["docker", "image", "rm", STALE_TAG], capture_output=True, check=False)
