"""1. Time to first output: from sending `run` to the first output byte.

Four ways to get a Python and a C hello world's first byte, interleaved
sample by sample so drifting load hits them alike:

- the server with its warm pool off (cold path) and on (warm start),
  each through a real WebSocket on loopback;
- `docker run --rm` of the same image, program and hardening flags, which is
  what a one-shot service (Codapi style) does per request;
- the raw engine floor: aiodocker create → attach → start → first byte, with
  the server's exact container spec and no server at all.

Under gVisor (`runsc`) the same again when the runtime is registered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.baseline import Timing, baseline_config, docker_run, docker_run_argv, engine_floor
from bench.baseline import staged as staged_program
from bench.client import BenchError, Session
from bench.common import BenchContext, BenchResult, PerRuntime, rotated, run_per_runtime
from bench.engine import BASELINE_OWNER, idle_count, wait_settled
from bench.programs import C_HELLO, PYTHON_HELLO, Program
from bench.progress import Ticker, say
from bench.server import bench_server, limits_env, server_env
from bench.stats import SUMMARY_HEADERS, Summary, Table, fmt, fmt_ratio, ratio, summary_cells
from ce_ws.config import RunLimits, Runtime

COLD, WARM, DOCKER_RUN, FLOOR = (
    "server, pool off",
    "server, pool on",
    "docker run --rm",
    "engine floor",
)
MODES = (COLD, WARM, DOCKER_RUN, FLOOR)
PROGRAMS = (PYTHON_HELLO, C_HELLO)
#: gVisor's own threads count against the pids cgroup: gcc fails at 64.
GVISOR_PIDS = 256
WARM_TARGET_MS = 30.0
WARM_TARGET_SPEEDUP = 8.0
_LAUNCHER_SETTLE_S = 0.15

Sampler = Callable[[Program], Awaitable[Timing]]


def runtime_limits(runtime: str) -> RunLimits:
    """The default limits, with room for gVisor's threads under runsc."""
    return RunLimits(pids=GVISOR_PIDS) if runtime == "runsc" else RunLimits()


def server_ids(runtime: str) -> tuple[str, str]:
    """The cold and warm servers' ids for this runtime."""
    return f"ce-bench-ttfo-{runtime}-cold", f"ce-bench-ttfo-{runtime}-warm"


async def server_sample(session: Session, program: Program) -> Timing:
    """One run through the server: `run` sent → first output frame, → `exit`."""
    sent_at = await session.run(program.language, program.source)
    ended_at, exit_message = await session.expect_timed("exit")
    if exit_message["status"] != "exited" or exit_message["exit_code"] != 0:
        raise BenchError(f"{program.name} run did not succeed: {exit_message}")
    if session.first_output_at is None:
        raise BenchError(f"{program.name} printed nothing: {exit_message}")
    return Timing(session.first_output_at - sent_at, ended_at - sent_at)


@dataclass
class Modes:
    """How to take one sample in each mode, for one runtime."""

    ctx: BenchContext
    runtime: Runtime
    cold: Session
    warm: Session

    @property
    def limits(self) -> RunLimits:
        return runtime_limits(self.runtime)

    def samplers(self) -> dict[str, Sampler]:
        return {
            COLD: lambda program: server_sample(self.cold, program),
            WARM: lambda program: server_sample(self.warm, program),
            DOCKER_RUN: self._docker_run,
            FLOOR: self._floor,
        }

    async def _docker_run(self, program: Program) -> Timing:
        with staged_program(program) as path:
            config = baseline_config(
                program, path, runtime=self.runtime, tty=False, limits=self.limits
            )
            return await docker_run(docker_run_argv(config))

    async def _floor(self, program: Program) -> Timing:
        with staged_program(program) as path:
            config = baseline_config(
                program, path, runtime=self.runtime, tty=True, limits=self.limits
            )
            return await engine_floor(self.ctx.docker, config)


async def _measure(
    ctx: BenchContext, runtime: Runtime, reps: int
) -> dict[str, dict[str, list[Timing]]]:
    cold_id, warm_id = server_ids(runtime)
    samples: dict[str, dict[str, list[Timing]]] = {p.name: {m: [] for m in MODES} for p in PROGRAMS}
    # Defaults, not per-run limits: the warm pool keeps the default profile.
    defaults = limits_env("DEFAULTS", runtime_limits(runtime))
    async with (
        bench_server(server_env(cold_id, pool=False, runtime=runtime, **defaults)) as cold_server,
        bench_server(server_env(warm_id, pool=True, runtime=runtime, **defaults)) as warm_server,
    ):
        cold = await Session.open(ctx.http, cold_server.ws_url)
        warm = await Session.open(ctx.http, warm_server.ws_url)
        try:
            pool_size = await idle_count(ctx.docker, warm_id)
            say(f"ttfo[{runtime}]: warm server keeps {pool_size} idle containers")
            expected = {cold_id: 0, warm_id: pool_size, BASELINE_OWNER: 0}
            samplers = Modes(ctx, runtime, cold, warm).samplers()
            ticker = Ticker(f"ttfo[{runtime}] samples", reps * len(PROGRAMS) * len(MODES))
            for program in PROGRAMS:
                for rep in range(reps):
                    for mode in rotated(MODES, rep):
                        await wait_settled(ctx.docker, expected)
                        await asyncio.sleep(_LAUNCHER_SETTLE_S)
                        samples[program.name][mode].append(await samplers[mode](program))
                        ticker.tick()
        finally:
            await cold.close()
            await warm.close()
    return samples


def _table(runtime: str, samples: dict[str, dict[str, list[Timing]]]) -> Table:
    rows = []
    for program in PROGRAMS:
        by_mode = {
            mode: Summary.of([t.first_byte_s for t in timings]).scaled(1000)
            for mode, timings in samples[program.name].items()
        }
        for mode, summary in by_mode.items():
            complete = Summary.of([t.total_s for t in samples[program.name][mode]]).scaled(1000)
            rows.append(
                [
                    program.name,
                    mode,
                    *summary_cells(summary),
                    fmt_ratio(ratio(summary.median, by_mode[DOCKER_RUN].median)),
                    fmt_ratio(ratio(summary.median, by_mode[FLOOR].median)),
                    fmt(complete.median),
                ]
            )
    return Table(
        title=f"Time to first output, {runtime} (ms)",
        headers=["program", "path", *SUMMARY_HEADERS, "÷ docker run", "÷ floor", "complete run"],
        rows=rows,
        notes=(
            "÷ docker run and ÷ floor: this row's median divided by the baseline's median "
            "measured in the same run (below 1 is faster than the baseline).",
            "complete run: median from `run` sent to `exit` received (server), to the CLI's "
            "exit after `--rm` (docker run), to the container's end (floor).",
        ),
    )


def _headline(runtime: str, samples: dict[str, dict[str, list[Timing]]]) -> list[str]:
    lines = []
    for program in PROGRAMS:
        medians = {
            mode: Summary.of([t.first_byte_s for t in timings]).median * 1000
            for mode, timings in samples[program.name].items()
        }
        speedup = ratio(medians[DOCKER_RUN], medians[WARM]) or 0.0
        line = (
            f"TTFO {program.name} ({runtime}): pool off {medians[COLD]:.0f} ms, "
            f"pool on {medians[WARM]:.0f} ms, docker run {medians[DOCKER_RUN]:.0f} ms, "
            f"floor {medians[FLOOR]:.0f} ms; docker run / pool on = {speedup:.2f}x"
        )
        if program is PYTHON_HELLO and runtime == "runc":
            met = medians[WARM] <= WARM_TARGET_MS and speedup >= WARM_TARGET_SPEEDUP
            line += (
                f" ({'meets' if met else 'misses'} the warm-start target: "
                f"median <= {WARM_TARGET_MS:.0f} ms and >= {WARM_TARGET_SPEEDUP:.0f}x faster)"
            )
        lines.append(line)
    return lines


def _raw(samples: dict[str, dict[str, list[Timing]]]) -> dict[str, Any]:
    return {
        program: {
            mode: {
                "first_byte_ms": [round(t.first_byte_s * 1000, 2) for t in timings],
                "complete_ms": [round(t.total_s * 1000, 2) for t in timings],
            }
            for mode, timings in modes.items()
        }
        for program, modes in samples.items()
    }


async def run(ctx: BenchContext) -> BenchResult:
    """Measure TTFO under runc, and under runsc when available."""
    result = BenchResult(
        name="ttfo",
        title="Time to first output",
        what=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
    )
    runtimes: dict[Runtime, int] = {"runc": ctx.reps(15, 3)}
    if ctx.gvisor:
        runtimes["runsc"] = ctx.reps(8, 2)
    steps = PerRuntime(measure=_measure, table=_table, headline=_headline, raw=_raw)
    return await run_per_runtime(ctx, result, runtimes, steps)
