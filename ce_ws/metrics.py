"""Prometheus metrics of one server, in a registry of its own (`GET /metrics`).

One `Metrics` per application, kept behind `METRICS`: tests that build several
apps never share a counter. Adding a metric: one attribute in `__init__` (with
`registry=self.registry`) and one small method named after the event.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ce_ws.sandbox.base import EngineState

#: The `Content-Type` of `render()`'s text (the classic text format, read by every Prometheus).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "ce"
_WALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Every metric of the server; the web and session layers call its methods."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._runs = Counter(
            f"{_PREFIX}_runs",
            "Runs ended, by language and exit status.",
            ["language", "status"],
            registry=self.registry,
        )
        self._prepares = Counter(
            f"{_PREFIX}_prepares",
            "Compiles ahead of a run (`prepare`) ended, by language and exit status.",
            ["language", "status"],
            registry=self.registry,
        )
        self._wall = Histogram(
            f"{_PREFIX}_run_wall_seconds",
            "Wall-clock time of the run stage, by language.",
            ["language"],
            buckets=_WALL_BUCKETS,
            registry=self.registry,
        )
        self._first_output = Histogram(
            f"{_PREFIX}_run_first_output_seconds",
            "From the run's admission to its program's first output byte, by language.",
            ["language"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._container_start = Histogram(
            f"{_PREFIX}_container_start_seconds",
            "From a run asking for a container to having it started and staged "
            "(warm-pool claims included).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._proxy_connections = Counter(
            f"{_PREFIX}_proxy_connections",
            "Connections of networked runs through the egress proxy, by policy and verdict.",
            ["policy", "verdict"],
            registry=self.registry,
        )
        self._rejected = Counter(
            f"{_PREFIX}_runs_rejected",
            "Runs refused before they started, by error code.",
            ["reason"],
            registry=self.registry,
        )
        self._reaped = Counter(
            f"{_PREFIX}_reaper_removals",
            "Leftover containers and staging folders removed by the reaper.",
            registry=self.registry,
        )
        self._active = Gauge(
            f"{_PREFIX}_active_runs", "Runs holding a slot.", registry=self.registry
        )
        self._queued = Gauge(
            f"{_PREFIX}_queued_runs", "Runs waiting for a slot.", registry=self.registry
        )
        self._connections = Gauge(
            f"{_PREFIX}_websocket_connections",
            "Open WebSocket connections.",
            registry=self.registry,
        )
        self._box_start = Histogram(
            f"{_PREFIX}_container_create_start_seconds",
            "Creating, attaching and starting one container until its launcher waits "
            "(cold starts and warm-pool refills).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._pool_size = Gauge(
            f"{_PREFIX}_pool_idle_containers", "Warm containers waiting.", registry=self.registry
        )
        self._pool_hits = Gauge(
            f"{_PREFIX}_pool_hits", "Runs that got a warm container.", registry=self.registry
        )
        self._placements = Counter(
            f"{_PREFIX}_engine_placements",
            "Runs placed on each engine.",
            ["engine"],
            registry=self.registry,
        )
        self._engine_up = Gauge(
            f"{_PREFIX}_engine_up",
            "Whether the container engine answers (1) or not (0), by engine.",
            ["engine"],
            registry=self.registry,
        )
        self._engine_draining = Gauge(
            f"{_PREFIX}_engine_draining",
            "Whether an operator drained the engine (1: it takes no new run), by engine.",
            ["engine"],
            registry=self.registry,
        )
        self._engine_runs = Gauge(
            f"{_PREFIX}_engine_runs",
            "Runs holding a box on the engine, by engine.",
            ["engine"],
            registry=self.registry,
        )
        self._engine_capacity = Gauge(
            f"{_PREFIX}_engine_capacity",
            "Runs the engine may hold at once, by engine.",
            ["engine"],
            registry=self.registry,
        )
        self._pool_misses = Gauge(
            f"{_PREFIX}_pool_misses",
            "Runs that found no warm container of their profile.",
            registry=self.registry,
        )

    def engines(self, states: list[EngineState]) -> None:
        """Set the per-engine gauges from their states; called per scrape."""
        for state in states:
            self._engine_up.labels(engine=state.name).set(state.condition != "down")
            self._engine_draining.labels(engine=state.name).set(state.condition == "draining")
            self._engine_runs.labels(engine=state.name).set(state.runs)
            self._engine_capacity.labels(engine=state.name).set(state.capacity)

    def watch(
        self,
        *,
        active_runs: Callable[[], float],
        queued_runs: Callable[[], float],
        websocket_connections: Callable[[], float],
    ) -> None:
        """Read these gauges from their owners at scrape time; called by `create_app`."""
        self._active.set_function(active_runs)
        self._queued.set_function(queued_runs)
        self._connections.set_function(websocket_connections)

    def watch_pool(
        self,
        *,
        size: Callable[[], float],
        hits: Callable[[], float],
        misses: Callable[[], float],
    ) -> None:
        """Read the warm pool's figures at scrape time; called when the pool starts."""
        self._pool_size.set_function(size)
        self._pool_hits.set_function(hits)
        self._pool_misses.set_function(misses)

    def box_started(self, seconds: float) -> None:
        """A container was created and started (for a run or for the pool)."""
        self._box_start.observe(seconds)

    def run_ended(self, language: str, status: str, wall_s: float) -> None:
        """A run sent its `exit`."""
        self._runs.labels(language=language, status=status).inc()
        self._wall.labels(language=language).observe(wall_s)

    def prepare_ended(self, language: str, status: str) -> None:
        """A `prepare` ended (`exited`: its program is kept)."""
        self._prepares.labels(language=language, status=status).inc()

    def first_output(self, language: str, seconds: float) -> None:
        """A run's program printed its first byte."""
        self._first_output.labels(language=language).observe(seconds)

    def container_started(self, seconds: float) -> None:
        """A run got its started, staged container."""
        self._container_start.observe(seconds)

    def rejected(self, reason: str) -> None:
        """A run was refused (`reason` is the error code)."""
        self._rejected.labels(reason=reason).inc()

    def run_placed(self, engine: str) -> None:
        """A run went to this engine."""
        self._placements.labels(engine=engine).inc()

    def reaped(self, count: int) -> None:
        """The reaper removed `count` leftovers."""
        self._reaped.inc(count)

    def proxy_decision(self, policy: str, verdict: str) -> None:
        """The egress proxy allowed or refused one connection."""
        self._proxy_connections.labels(policy=policy, verdict=verdict).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric; called per scrape."""
        return generate_latest(self.registry)
