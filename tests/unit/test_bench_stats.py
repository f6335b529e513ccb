"""The benchmarks' statistics and tables: pure logic, no engine."""

from __future__ import annotations

import math

import pytest

from bench.server import server_env
from bench.soak import least_squares_slope
from bench.stats import (
    Summary,
    Table,
    fmt,
    fmt_ratio,
    median,
    percentile,
    ratio,
    render_table,
    summary_cells,
)
from ce_ws.config import RunMaxima, Settings


def test_percentile_interpolates_between_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == 2.5
    assert percentile(samples, 90) == pytest.approx(3.7)


def test_percentile_of_one_sample_is_that_sample() -> None:
    assert percentile([7.0], 99) == 7.0
    assert median([7.0]) == 7.0


def test_percentile_refuses_empty_series_and_bad_rank() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 101)


def test_median_of_odd_series_is_the_middle_value() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0


def test_ratio_against_baseline_and_zero_baseline() -> None:
    assert ratio(30.0, 240.0) == 0.125
    assert ratio(1.0, 0.0) is None


def test_summary_of_series_and_scaling() -> None:
    summary = Summary.of([0.001 * value for value in range(1, 101)])
    assert summary.n == 100
    assert summary.min == pytest.approx(0.001)
    assert summary.max == pytest.approx(0.1)
    assert summary.median == pytest.approx(0.0505)
    in_ms = summary.scaled(1000)
    assert in_ms.median == pytest.approx(50.5)
    assert in_ms.p99 == pytest.approx(99.01)
    assert in_ms.n == 100


def test_cells_format_numbers_and_missing_values() -> None:
    assert fmt(None) == "-"
    assert fmt(math.nan) == "-"
    assert fmt(1234.5) == "1,234"
    assert fmt(12.345, 2) == "12.35"
    assert fmt_ratio(None) == "-"
    assert fmt_ratio(0.125) == "0.12x"
    cells = summary_cells(Summary.of([1.0, 2.0, 3.0]), tail=False)
    assert cells == ["2.0", "1.0", "3.0", "3"]


def test_render_table_pads_columns_and_lists_notes() -> None:
    table = Table(
        title="T",
        headers=["path", "median"],
        rows=[["server", "1.0"], ["docker run", "10.0"]],
        notes=("a note",),
    )
    lines = render_table(table).splitlines()
    assert lines[0] == "**T**"
    assert lines[2] == "| path       | median |"
    assert lines[3] == "|------------|--------|"
    assert lines[5] == "| docker run | 10.0   |"
    assert lines[-1] == "- a note"


def test_render_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="cells"):
        render_table(Table(title="T", headers=["a", "b"], rows=[["only one"]]))


def test_benchmark_servers_admit_every_session_of_one_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All sessions of a benchmark come from loopback: no cap of ours may refuse them."""
    for name, value in server_env("ce-bench-unit", pool=True).items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    capacity = settings.capacity
    most_sessions = 1000  # above the capacity ramp's largest step
    assert min(capacity.max_connections, capacity.max_connections_per_client) >= most_sessions
    assert min(capacity.max_runs, capacity.max_runs_per_client) >= most_sessions
    assert settings.maxima.output_bytes == 256 * 1024 * 1024
    assert settings.maxima.wall_ms == RunMaxima().wall_ms  # the others keep their maxima


def test_least_squares_slope_of_a_line_and_of_noise_around_it() -> None:
    assert least_squares_slope([(0, 1), (1000, 3), (2000, 5)]) == pytest.approx(0.002)
    noisy = [(x, 10 + (5 if x % 2 else -5)) for x in range(0, 1000, 10)]
    assert abs(least_squares_slope(noisy)) < 0.001
    assert least_squares_slope([(5, 1), (5, 9)]) == 0.0  # one x: no slope
