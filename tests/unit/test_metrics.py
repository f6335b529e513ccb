"""`Metrics`: each app its own registry; every event moves its metric."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ce_ws.metrics import Metrics


def _values(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


def test_two_metrics_objects_never_share_a_counter() -> None:
    first, second = Metrics(), Metrics()
    first.rejected("busy")
    assert _values(first)[("ce_runs_rejected_total", (("reason", "busy"),))] == 1
    assert ("ce_runs_rejected_total", (("reason", "busy"),)) not in _values(second)


def test_each_event_moves_its_metric() -> None:
    metrics = Metrics()
    metrics.run_ended("python", "timeout", 2.0)
    metrics.first_output("python", 0.3)
    metrics.container_started(0.2)
    metrics.reaped(3)
    values = _values(metrics)
    assert values[("ce_runs_total", (("language", "python"), ("status", "timeout")))] == 1
    assert values[("ce_run_wall_seconds_sum", (("language", "python"),))] == 2.0
    assert values[("ce_run_first_output_seconds_count", (("language", "python"),))] == 1
    assert values[("ce_container_start_seconds_count", ())] == 1
    assert values[("ce_reaper_removals_total", ())] == 3


def test_gauges_are_read_from_their_owners_at_scrape_time() -> None:
    metrics = Metrics()
    state = {"active": 2, "queued": 1, "sockets": 5}
    metrics.watch(
        active_runs=lambda: state["active"],
        queued_runs=lambda: state["queued"],
        websocket_connections=lambda: state["sockets"],
    )
    values = _values(metrics)
    assert values[("ce_active_runs", ())] == 2
    assert values[("ce_queued_runs", ())] == 1
    assert values[("ce_websocket_connections", ())] == 5
    state["active"] = 0
    assert _values(metrics)[("ce_active_runs", ())] == 0
