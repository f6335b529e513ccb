"""Where results go: a JSON file under bench/results/ and docs/benchmarks.md.

The Markdown file keeps whatever is written outside its generated sections;
each section sits between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` and
is replaced when that benchmark runs again (so `--only` updates one section).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import BenchResult
from bench.server import RESULTS_DIR, ROOT
from bench.stats import render_table

DOC_PATH = ROOT / "docs" / "benchmarks.md"
_DOC_HEADER = """# Benchmarks

What users feel, measured against what they would use instead. Every figure
is a median (with tails) of repeated runs; every comparison is a ratio against
a baseline measured in the same run, interleaved with it.

Reproduce with `make bench` (all seven, about 11 minutes), or
`.venv/bin/python -m bench --only NAME` for one (`ttfo`, `echo`, `throughput`,
`capacity`, `churn`, `teardown`, `surfaces`); `--quick` is a short smoke run that leaves
this file alone. Raw samples go to `bench/results/*.json` (not committed).
"""


@dataclass(frozen=True, slots=True)
class Machine:
    """The machine the figures come from."""

    cpu: str
    cores: int
    memory_gib: float
    kernel: str
    os: str
    docker: str
    runsc: str
    python: str
    libraries: str
    commit: str

    @classmethod
    def describe(cls, docker_version: str, runsc_args: list[str]) -> Machine:
        """Read the machine's description (CPU, memory, versions, commit)."""
        runsc = _command_line(["runsc", "--version"]) or "not installed"
        return cls(
            cpu=_cpu_model(),
            cores=os.cpu_count() or 0,
            memory_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            kernel=platform.release(),
            os=_os_name(),
            docker=docker_version,
            runsc=f"{runsc} ({' '.join(runsc_args) or 'default flags'})",
            python=platform.python_version(),
            libraries=", ".join(f"{name} {version(name)}" for name in ("aiohttp", "aiodocker")),
            commit=_commit(),
        )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def _command_line(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.splitlines()[0] if result.stdout else ""


def _commit() -> str:
    head = _command_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = _command_line(["git", "-C", str(ROOT), "status", "--porcelain", "--", "ce_ws"])
    return f"{head} (ce_ws has uncommitted changes)" if dirty else head


def load_average() -> str:
    """The 1, 5 and 15 minute load averages now."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


@dataclass(frozen=True, slots=True)
class RunInfo:
    """When and how this run was made."""

    started: str
    command: str
    quick: bool
    load_before: str
    load_after: str


def now_utc() -> str:
    """The time now, for the report."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_json(machine: Machine, info: RunInfo, results: list[BenchResult]) -> Path:
    """Save everything measured; returns the file's path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}{'-quick' if info.quick else ''}.json"
    document: dict[str, Any] = {
        "machine": asdict(machine),
        "run": asdict(info),
        "results": [result.as_dict() for result in results],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path


def render_result(result: BenchResult, info: RunInfo) -> str:
    """One benchmark's section of the report."""
    parts = [f"## {result.title}", "", result.what, ""]
    parts.append(
        f"Measured {info.started} with `{info.command}` in {result.seconds:.0f} s; "
        f"load average (1/5/15 min) {result.load_before} before, {result.load_after} after "
        f"on {os.cpu_count()} cores."
    )
    if result.headline:
        parts += ["", *[f"- **{line}**" for line in result.headline]]
    for table in result.tables:
        parts += ["", render_table(table)]
    return "\n".join(parts)


def render_machine(machine: Machine) -> str:
    """The machine section of the report."""
    rows = [f"| {name.replace('_', ' ')} | {value} |" for name, value in asdict(machine).items()]
    return "\n".join(["## Machine", "", "| | |", "|---|---|", *rows])


def _replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{body}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def update_doc(machine: Machine, info: RunInfo, results: list[BenchResult]) -> Path:
    """Replace the machine section and each measured benchmark's section."""
    text = DOC_PATH.read_text() if DOC_PATH.exists() else _DOC_HEADER
    text = _replace_section(text, "machine", render_machine(machine))
    for result in results:
        text = _replace_section(text, result.name, render_result(result, info))
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    return DOC_PATH
