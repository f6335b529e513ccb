"""Languages: time to first output of a hello world in every language, warm.

For each language, interleaved sample by sample: the server with its warm
pool on, through a real WebSocket on loopback; `docker run --rm` of the same
image, program and hardening; the raw engine floor (create → attach → start
→ first byte). A compiled language's first run gets new source every sample
(a trailing comment), so it always compiles; its "run again" row sends the
same source each time, which the compile cache answers (`docker run` and the
floor have no cache: the ratio is against their compile-and-run). Its "after
prepare" row is new source whose `prepare` (sent as the playground does when
typing pauses) was answered `ready` before `run` was sent: the first Run of
new code by someone who paused longer than the compile.

Under gVisor (`runsc`) the same again when the runtime is registered.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiodocker

from bench.baseline import Timing
from bench.client import BenchError, Session
from bench.common import BenchContext, BenchResult, PerRuntime, rotated, run_per_runtime
from bench.engine import BASELINE_OWNER, idle_count, wait_settled
from bench.programs import (
    BASH_HELLO,
    C_HELLO,
    CPP_BITS_HELLO,
    CPP_IOSTREAM_HELLO,
    JAVASCRIPT_HELLO,
    PYTHON_HELLO,
    RUBY_HELLO,
    Program,
    fresh,
)
from bench.progress import Ticker, say
from bench.server import bench_server, limits_env, server_env
from bench.stats import SUMMARY_HEADERS, Summary, Table, fmt, fmt_ratio, ratio, summary_cells
from bench.ttfo import DOCKER_RUN, FLOOR, WARM, Modes, Sampler, runtime_limits, server_sample
from ce_ws.config import Runtime

_LAUNCHER_SETTLE_S = 0.15
_PREPARED_SALT = 1000
_PREPARE_TIMEOUT_S = 60.0
#: The engine is shared: another bench's sweep may remove a container mid-sample.
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Case:
    """One row group: a program, whether each sample is new source, its goal (ms)."""

    name: str
    program: Program
    goal_ms: float
    fresh: bool = False
    #: The case whose `docker run` and floor this one is compared with (a rerun's first run).
    baseline_of: str | None = None
    #: Each sample's source is compiled ahead (`prepare`) before its run.
    prepared: bool = False

    @property
    def modes(self) -> tuple[str, ...]:
        return (WARM,) if self.baseline_of else (WARM, DOCKER_RUN, FLOOR)

    def sample_program(self, sample: int) -> Program:
        if not self.fresh:
            return self.program
        # Sources no other row compiled: a prepared row must not find them cached.
        return fresh(self.program, sample + _PREPARED_SALT if self.prepared else sample)


CASES = (
    Case("python", PYTHON_HELLO, 10),
    Case("bash", BASH_HELLO, 10),
    Case("javascript", JAVASCRIPT_HELLO, 20),
    Case("ruby", RUBY_HELLO, 20),
    Case("c", C_HELLO, 60, fresh=True),
    Case("c++ iostream", CPP_IOSTREAM_HELLO, 120, fresh=True),
    Case("c++ bits/stdc++.h", CPP_BITS_HELLO, 150, fresh=True),
    Case("c, run again", C_HELLO, 25, baseline_of="c"),
    Case("c++ iostream, run again", CPP_IOSTREAM_HELLO, 25, baseline_of="c++ iostream"),
    Case("c++ bits/stdc++.h, run again", CPP_BITS_HELLO, 25, baseline_of="c++ bits/stdc++.h"),
    Case("c, after prepare", C_HELLO, 60, fresh=True, prepared=True, baseline_of="c"),
    Case(
        "c++ iostream, after prepare",
        CPP_IOSTREAM_HELLO,
        120,
        fresh=True,
        prepared=True,
        baseline_of="c++ iostream",
    ),
    Case(
        "c++ bits/stdc++.h, after prepare",
        CPP_BITS_HELLO,
        150,
        fresh=True,
        prepared=True,
        baseline_of="c++ bits/stdc++.h",
    ),
)

Samples = dict[str, dict[str, list[Timing]]]


async def _measure(ctx: BenchContext, runtime: Runtime, reps: int) -> Samples:
    say(f"languages[{runtime}]: {reps} samples per row")
    server_id = f"ce-bench-languages-{runtime}"
    samples: Samples = {case.name: {mode: [] for mode in case.modes} for case in CASES}
    defaults = limits_env("DEFAULTS", runtime_limits(runtime))
    async with bench_server(
        server_env(server_id, pool=True, runtime=runtime, **defaults)
    ) as server:
        warm = await Session.open(ctx.http, server.ws_url)
        try:
            pool_size = await idle_count(ctx.docker, server_id)
            expected = {server_id: pool_size, BASELINE_OWNER: 0}
            samplers = Modes(ctx, runtime, warm, warm).samplers()
            for case in CASES:
                if case.baseline_of:  # the first run that fills the cache is not a sample
                    await server_sample(warm, case.program)
            total = sum(len(case.modes) for case in CASES) * reps
            ticker = Ticker(f"languages[{runtime}] samples", total)
            for case in CASES:
                for rep in range(reps):
                    program = case.sample_program(rep)
                    for mode in rotated(case.modes, rep):
                        if case.prepared:
                            await _prepare(warm, program)
                        await wait_settled(ctx.docker, expected)
                        await asyncio.sleep(_LAUNCHER_SETTLE_S)
                        samples[case.name][mode].append(await _sample(samplers[mode], program))
                        ticker.tick()
        finally:
            await warm.close()
    return samples


async def _prepare(session: Session, program: Program) -> None:
    """Compile `program` ahead, as the playground does when its author pauses."""
    message = {"type": "prepare", "language": program.language, "code": program.source}
    await session.ws.send_str(json.dumps(message))
    answer = await session.expect("prepared", within_s=_PREPARE_TIMEOUT_S)
    if answer["outcome"] != "ready":
        raise BenchError(f"{program.name} was not prepared: {answer}")


async def _sample(sampler: Sampler, program: Program) -> Timing:
    """One sample, taken again (bounded) when the engine lost its container."""
    for _ in range(_ATTEMPTS - 1):
        try:
            return await sampler(program)
        except (BenchError, RuntimeError, TimeoutError, aiodocker.DockerError) as exc:
            say(f"languages: {program.name} sample lost ({exc}); taking it again")
    return await sampler(program)


def _median_ms(timings: list[Timing]) -> float:
    return Summary.of([t.first_byte_s for t in timings]).median * 1000


def _table(runtime: str, samples: Samples) -> Table:
    rows = []
    for case in CASES:
        baselines = samples[case.baseline_of or case.name]
        for mode, timings in samples[case.name].items():
            summary = Summary.of([t.first_byte_s for t in timings]).scaled(1000)
            rows.append(
                [
                    case.name,
                    mode,
                    *summary_cells(summary),
                    fmt_ratio(ratio(summary.median, _median_ms(baselines[DOCKER_RUN]))),
                    fmt_ratio(ratio(summary.median, _median_ms(baselines[FLOOR]))),
                    fmt(case.goal_ms) if mode == WARM else "",
                ]
            )
    return Table(
        title=f"Time to first output per language, {runtime} (ms)",
        headers=["program", "path", *SUMMARY_HEADERS, "÷ docker run", "÷ floor", "goal"],
        rows=rows,
        notes=(
            "÷ docker run and ÷ floor: this row's median divided by the baseline's median "
            "measured in the same run (a rerun row: its first run's baselines).",
            "goal: issue 18's target for the warm server's median (an after-prepare row: "
            "its first run's goal; its compile happened while the author paused).",
        ),
    )


def _headline(runtime: str, samples: Samples) -> list[str]:
    lines = []
    for case in CASES:
        warm = _median_ms(samples[case.name][WARM])
        docker_run = _median_ms(samples[case.baseline_of or case.name][DOCKER_RUN])
        verdict = "meets" if warm <= case.goal_ms else "misses"
        lines.append(
            f"{case.name} ({runtime}): pool on {warm:.0f} ms, docker run {docker_run:.0f} ms "
            f"({docker_run / warm:.1f}x); {verdict} the {case.goal_ms:.0f} ms goal"
        )
    return lines


def _raw(samples: Samples) -> dict[str, Any]:
    return {
        case: {
            mode: [round(t.first_byte_s * 1000, 2) for t in timings]
            for mode, timings in modes.items()
        }
        for case, modes in samples.items()
    }


async def run(ctx: BenchContext) -> BenchResult:
    """Measure every language under runc, and under runsc when available."""
    result = BenchResult(
        name="languages",
        title="Time to first output per language",
        what=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
    )
    runtimes: dict[Runtime, int] = {"runc": ctx.reps(7, 2)}
    if ctx.gvisor:
        runtimes["runsc"] = ctx.reps(5, 1)
    steps = PerRuntime(measure=_measure, table=_table, headline=_headline, raw=_raw)
    return await run_per_runtime(ctx, result, runtimes, steps)
