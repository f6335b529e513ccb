"""`python -m ce_ws doctor`: what the server needs, what is missing, how to fix it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ce_ws.config import EngineSettings, Settings
from ce_ws.errors import SandboxError
from ce_ws.image import (
    PROXY_RECIPE,
    RECIPE_LABEL,
    RUNTIME_RECIPE,
    Recipe,
    image_created,
    image_pending_updates,
    recipe_hash,
)
from ce_ws.runc import CVE, cve_2024_21626, debian_changelog
from ce_ws.sandbox.engine import Engine

OK, BAD, WARN = "ok  ", "FAIL", "WARN"
#: The command that refreshes the image (also what the README schedules).
REFRESH = "run `python -m ce_ws image` (it rebuilds when Debian has newer packages)"


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
    """(passed, what, fix) for each check, of every engine the server drives."""
    engines = settings.sandbox.engine_list()
    checks = []
    for engine in engines:
        found = await _check_engine(settings, engine)
        # Named only when there are several: one engine's report reads as before.
        checks += [(passed, f"[{engine.name}] {what}" if len(engines) > 1 else what, fix)
                   for passed, what, fix in found]  # fmt: skip
    return checks


async def _check_engine(
    settings: Settings, configured: EngineSettings
) -> list[tuple[bool, str, str]]:
    url = configured.url
    try:
        engine = Engine(
            settings.sandbox, url=url, tls=configured.tls, server_id=settings.server_id,
            seccomp_profile="{}",
        )  # fmt: skip
    except SandboxError as exc:  # its TLS files
        return [(False, f"engine at {url}: {exc.message}", 'fix the engine\'s "tls" files')]
    checks: list[tuple[bool, str, str]] = []
    try:
        try:
            version = await engine.version()
        except SandboxError as exc:
            fix = "run `bash scripts/ensure-engine.sh` as root (or start dockerd)"
            return [(False, f"engine at {url}: {exc.message}", fix)]
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
        checks.append(await _image_check(engine, "runtime", settings.sandbox.image, RUNTIME_RECIPE))
        if settings.network.policies:  # without a policy no egress proxy ever starts
            image = settings.network.proxy_image
            checks.append(await _image_check(engine, "egress proxy", image, PROXY_RECIPE))
    finally:
        await engine.close()
    return checks


async def _image_check(
    engine: Engine, role: str, image: str, recipe: Recipe
) -> tuple[bool, str, str]:
    """Whether `image` is there and built from the recipe in this checkout."""
    labels = await engine.image_labels(image)
    current = labels is not None and labels.get(RECIPE_LABEL) == recipe_hash(recipe)
    state = "absent" if labels is None else ("current" if current else "out of date")
    return current, f"{role} image {image}: {state}", "run `python -m ce_ws image`"


def days_since(created: datetime, now: datetime) -> float:
    """The image's age in days (a build stamped ahead of the clock counts as new)."""
    return max(0.0, (now - created).total_seconds() / 86_400)


async def _freshness_warnings(settings: Settings) -> list[tuple[str, str]] | None:
    """(what, fix) for an image built too long ago or with Debian updates pending.

    None when the image is absent: the image check already fails with its fix.
    """
    image = settings.sandbox.image
    created = await asyncio.to_thread(image_created, image)
    if created is None:
        return None
    warnings = []
    age_days = days_since(created, datetime.now(UTC))
    if age_days > settings.image.max_age_days:
        warnings.append(
            (
                f"runtime image {image} was built {age_days:.0f} days ago"
                f" (more than CE_IMAGE__MAX_AGE_DAYS={settings.image.max_age_days})",
                REFRESH,
            )
        )
    try:
        pending = await asyncio.to_thread(image_pending_updates, image)
    except (OSError, RuntimeError) as exc:
        return [*warnings, (f"runtime image {image}: cannot compare with Debian ({exc})", REFRESH)]
    if pending:
        shown = ", ".join(map(str, pending[:5])) + (" …" if len(pending) > 5 else "")
        warnings.append(
            (f"runtime image {image}: {len(pending)} Debian updates pending ({shown})", REFRESH)
        )
    return warnings


def doctor(settings: Settings) -> int:
    """Print every check; exit code 1 when something needed is missing.

    Freshness is a warning (exit code unchanged): the server works, but the
    image should be refreshed.
    """
    checks = asyncio.run(_check(settings))
    for passed, what, fix in checks:
        print(f"[{OK if passed else BAD}] {what}" + ("" if passed else f"\n       fix: {fix}"))
    warnings = asyncio.run(_freshness_warnings(settings))
    for what, fix in warnings or []:
        print(f"[{WARN}] {what}\n       fix: {fix}")
    if warnings == []:
        print(f"[{OK}] runtime image {settings.sandbox.image}: fresh, no Debian update pending")
    return 0 if all(passed for passed, _, _ in checks) else 1
