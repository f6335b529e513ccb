"""What every benchmark gets (`BenchContext`) and gives back (`BenchResult`)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import aiodocker
import aiohttp

from bench.stats import Table
from ce_ws.config import Runtime

T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class BenchContext:
    """Shared clients and the run's mode; built once by `bench.__main__`."""

    docker: aiodocker.Docker
    http: aiohttp.ClientSession
    quick: bool
    gvisor: bool

    def reps(self, full: int, quick: int) -> int:
        """How many repetitions: `full` normally, `quick` in smoke mode."""
        return quick if self.quick else full


@dataclass
class BenchResult:
    """One benchmark's tables (for the report) and raw figures (for the JSON)."""

    name: str
    title: str
    what: str
    tables: list[Table] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: The 1/5/15-minute load averages when it began and ended (others share the machine).
    load_before: str = ""
    load_after: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "what": self.what,
            "headline": self.headline,
            "tables": [table.as_dict() for table in self.tables],
            "data": self.data,
            "seconds": round(self.seconds, 1),
            "load_before": self.load_before,
            "load_after": self.load_after,
        }


Benchmark = Callable[[BenchContext], Awaitable[BenchResult]]


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """`items` starting at position `shift`: interleaved modes take turns going first."""
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


@dataclass(frozen=True, slots=True)
class PerRuntime(Generic[S]):
    """A benchmark measured once per runtime: how to sample, tabulate and summarise."""

    measure: Callable[[BenchContext, Runtime, int], Awaitable[S]]
    table: Callable[[str, S], Table]
    headline: Callable[[str, S], list[str]]
    raw: Callable[[S], Any]


async def run_per_runtime(
    ctx: BenchContext, result: BenchResult, reps: dict[Runtime, int], steps: PerRuntime[S]
) -> BenchResult:
    """Measure under each runtime in turn; its table, headline and raw figures go in `result`."""
    began = time.monotonic()
    for runtime, count in reps.items():
        samples = await steps.measure(ctx, runtime, count)
        result.tables.append(steps.table(runtime, samples))
        result.headline += steps.headline(runtime, samples)
        result.data[runtime] = steps.raw(samples)
    result.seconds = time.monotonic() - began
    return result
