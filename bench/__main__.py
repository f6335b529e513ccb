"""`python -m bench [--only NAME ...] [--quick]`: run the benchmarks, write the report.

Progress goes to stderr, the tables to stdout, raw figures to bench/results/,
and (unless `--quick`) the tables to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
import traceback

import aiodocker

from bench import (
    capacity,
    churn,
    echo,
    engines,
    fanout,
    languages,
    network,
    soak,
    surfaces,
    teardown,
    throughput,
    ttfo,
)
from bench.client import http_client
from bench.common import BenchContext, Benchmark, BenchResult
from bench.engine import bench_leftovers, engine_client, sweep_all
from bench.progress import say
from bench.report import Machine, RunInfo, load_average, now_utc, update_doc, write_json
from bench.stats import render_table
from ce_ws.config import SandboxSettings

BENCHMARKS: dict[str, Benchmark] = {
    "ttfo": ttfo.run,
    "languages": languages.run,
    "echo": echo.run,
    "throughput": throughput.run,
    "capacity": capacity.run,
    "churn": churn.run,
    "teardown": teardown.run,
    "surfaces": surfaces.run,
    "fanout": fanout.run,
    "network": network.run,
    "soak": soak.run,
    "engines": engines.run,
}
_LEAK_SETTLE_S = 15.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run; no docs update")
    parser.add_argument("--no-gvisor", action="store_true", help="skip the runsc measurements")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    return parser.parse_args(argv)


async def _gvisor_available(docker: aiodocker.Docker) -> bool:
    info = await docker.system.info()
    if "runsc" not in info.get("Runtimes", {}):
        return False
    process = await asyncio.create_subprocess_exec(
        "docker", "run", "--rm", "--runtime=runsc", "--network=none",
        SandboxSettings().image, "true",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    return await process.wait() == 0


async def _run_one(name: str, benchmark: Benchmark, ctx: BenchContext) -> BenchResult | None:
    say(f"== {name} == (load average {load_average()})")
    began, load_before = time.monotonic(), load_average()
    try:
        result = await benchmark(ctx)
    except Exception:
        say(f"{name} FAILED:\n{traceback.format_exc()}")
        result = None
    left = await _leftovers_after(ctx.docker, name)
    if result is not None:
        result.seconds = time.monotonic() - began
        result.load_before, result.load_after = load_before, load_average()
        result.data["leftovers_after"] = left
        for table in result.tables:
            print(render_table(table), end="\n\n", flush=True)
        for line in result.headline:
            print(f"* {line}", flush=True)
        print(flush=True)
    say(f"{name} done in {time.monotonic() - began:.0f}s")
    return result


async def _leftovers_after(docker: aiodocker.Docker, name: str) -> int:
    deadline = time.monotonic() + _LEAK_SETTLE_S
    found = await bench_leftovers(docker, [name])
    while found.count and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        found = await bench_leftovers(docker, [name])
    if found.count:
        say(f"LEAK: {found.containers} {found.staging}")
        await sweep_all(docker, [name])
    return found.count


async def run(args: argparse.Namespace, command: str) -> int:
    """Run the selected benchmarks; returns the process exit code."""
    names = args.only or list(BENCHMARKS)
    async with engine_client() as docker, http_client() as http:
        await sweep_all(docker, names)  # a crashed earlier run of these benchmarks
        version, engine_info = await docker.version(), await docker.system.info()
        runsc_args = engine_info.get("Runtimes", {}).get("runsc", {}).get("runtimeArgs", [])
        machine = Machine.describe(
            f"{version['Version']} (API {version['ApiVersion']})", runsc_args
        )
        gvisor = not args.no_gvisor and await _gvisor_available(docker)
        say(f"running {', '.join(names)}{' (quick)' if args.quick else ''}; gVisor: {gvisor}")
        ctx = BenchContext(docker=docker, http=http, quick=args.quick, gvisor=gvisor)
        started, load_before = now_utc(), load_average()
        results = [await _run_one(name, BENCHMARKS[name], ctx) for name in names]
    done = [result for result in results if result is not None]
    info = RunInfo(started, command, args.quick, load_before, load_average())
    say(f"raw results: {write_json(machine, info, done)}")
    if not args.quick and not args.no_docs and done:
        say(f"report: {update_doc(machine, info, done)}")
    clean = all(result.data["leftovers_after"] == 0 for result in done)
    return 0 if len(done) == len(names) and clean else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of `make bench`."""
    args = parse_args(argv)
    command = shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])])
    began = time.monotonic()
    code = asyncio.run(run(args, command))
    say(f"all done in {time.monotonic() - began:.0f}s (exit {code})")
    return code


if __name__ == "__main__":
    sys.exit(main())
