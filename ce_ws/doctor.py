"""`python -m ce_ws doctor`: what the server needs, what is missing, how to fix it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ce_ws.config import Settings
from ce_ws.errors import SandboxError
from ce_ws.image import RECIPE_LABEL, recipe_hash
from ce_ws.runc import CVE, cve_2024_21626, debian_changelog
from ce_ws.sandbox.engine import Engine

OK, BAD = "ok  ", "FAIL"


def _cgroup_version() -> str:
    return "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"


async def _runc_check(version: dict[str, Any]) -> tuple[bool, str, str]:
    """The engine's runc, as it reports it, and whether it carries the CVE's fix."""
    components = version.get("Components") or []
    runc: dict[str, Any] = next((c for c in components if c.get("Name") == "runc"), {})
    number = str(runc.get("Version", ""))
    package = str((runc.get("Details") or {}).get("GitCommit", ""))
    verdict = cve_2024_21626(number, package, await asyncio.to_thread(debian_changelog))
    return (
        verdict.fixed,
        f"runc {number or '(not reported)'} ({package or 'no commit'}): {CVE} {verdict.reason}",
        "upgrade runc to 1.1.12 or later (Debian 12: `apt-get install --only-upgrade runc`)"
        " and restart dockerd",
    )


async def _check(settings: Settings) -> list[tuple[bool, str, str]]:
    """(passed, what, fix) for each check."""
    engine = Engine(settings.sandbox, server_id=settings.server_id, seccomp_profile="{}")
    checks: list[tuple[bool, str, str]] = []
    try:
        try:
            version = await engine.version()
        except SandboxError as exc:
            fix = "run `bash scripts/ensure-engine.sh` as root (or start dockerd)"
            return [(False, f"engine at {settings.sandbox.docker_url}: {exc.message}", fix)]
        checks.append(
            (
                True,
                f"engine {version.get('Version')} (API {version.get('ApiVersion')}), cgroup v{_cgroup_version()}",
                "",
            )
        )
        checks.append(await _runc_check(version))
        info = await engine.docker.system.info()
        runtimes = sorted(info.get("Runtimes", {}))
        wanted = sorted({settings.sandbox.runtime, *settings.sandbox.language_runtimes.values()})
        checks.append(
            (
                set(wanted) <= set(runtimes),
                f"runtimes {', '.join(runtimes)}; configured: {', '.join(wanted)}",
                "run `bash scripts/ensure-engine.sh` as root to register runsc",
            )
        )
        labels = await engine.image_labels(settings.sandbox.image)
        current = labels is not None and labels.get(RECIPE_LABEL) == recipe_hash()
        state = "absent" if labels is None else ("current" if current else "out of date")
        checks.append(
            (
                current,
                f"runtime image {settings.sandbox.image}: {state}",
                "run `python -m ce_ws image`",
            )
        )
    finally:
        await engine.close()
    return checks


def doctor(settings: Settings) -> int:
    """Print every check; exit code 1 when something needed is missing."""
    checks = asyncio.run(_check(settings))
    for passed, what, fix in checks:
        print(f"[{OK if passed else BAD}] {what}" + ("" if passed else f"\n       fix: {fix}"))
    return 0 if all(passed for passed, _, _ in checks) else 1
