"""Summaries of repeated measurements, ratios against a baseline, and tables.

Pure logic, no I/O: every benchmark turns its samples into `Summary` values
here and renders them with `render_table`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated between ranks."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: Sequence[float]) -> float:
    """The 50th percentile."""
    return percentile(samples, 50)


def ratio(value: float, baseline: float) -> float | None:
    """How many times `value` is `baseline`; None when the baseline is zero."""
    return value / baseline if baseline else None


@dataclass(frozen=True, slots=True)
class Summary:
    """Median, tail and extremes of one series of measurements."""

    n: int
    median: float
    p90: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        """Summarise a non-empty series."""
        return cls(
            n=len(samples),
            median=median(samples),
            p90=percentile(samples, 90),
            p99=percentile(samples, 99),
            min=min(samples),
            max=max(samples),
        )

    def scaled(self, factor: float) -> Summary:
        """The same summary in other units (e.g. seconds to milliseconds)."""
        return Summary(
            self.n,
            self.median * factor,
            self.p90 * factor,
            self.p99 * factor,
            self.min * factor,
            self.max * factor,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table cell; a dash when there is none."""
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio as `1.23x`."""
    return "-" if value is None else f"{value:.2f}x"


@dataclass(frozen=True, slots=True)
class Table:
    """One result table: a title, column headers, rows of cells, notes below."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "headers": self.headers,
            "rows": self.rows,
            "notes": list(self.notes),
        }


def summary_cells(summary: Summary, *, tail: bool = True, digits: int = 1) -> list[str]:
    """The cells `median, p90, p99, min, max, n` (or without the tail)."""
    middle = [fmt(summary.p90, digits), fmt(summary.p99, digits)] if tail else []
    return [
        fmt(summary.median, digits),
        *middle,
        fmt(summary.min, digits),
        fmt(summary.max, digits),
        str(summary.n),
    ]


SUMMARY_HEADERS = ["median", "p90", "p99", "min", "max", "n"]
SHORT_SUMMARY_HEADERS = ["median", "min", "max", "n"]


def render_table(table: Table) -> str:
    """The table as Markdown, columns padded so it also reads well in a terminal."""
    widths = [len(header) for header in table.headers]
    for row in table.rows:
        if len(row) != len(widths):
            raise ValueError(f"row {row} does not have {len(widths)} cells")
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        return "| " + " | ".join(padded) + " |"

    lines = [f"**{table.title}**", "", line(table.headers)]
    lines.append("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    lines.extend(line(row) for row in table.rows)
    if table.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in table.notes)
    return "\n".join(lines)
