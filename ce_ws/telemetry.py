"""What the web layer reports about runs: metrics and event-log lines together.

`Telemetry` (behind `TELEMETRY`) is bound to one client with `for_client`;
that gives each run a `RunTelemetry` (the session's `RunObserver`) and
records each refusal.
"""

from __future__ import annotations

from typing import Literal

from ce_ws.errors import CeError
from ce_ws.logs import EventLog
from ce_ws.metrics import Metrics
from ce_ws.protocol import Exit

#: Which door a run came in by.
Via = Literal["ws", "rest", "piston", "judge0", "codapi"]


class RunTelemetry:
    """One run's observer: its timings and its end."""

    def __init__(
        self, metrics: Metrics, events: EventLog, *, language: str, client: str, via: Via
    ) -> None:
        self._metrics = metrics
        self._events = events
        self._language = language
        self._client = client
        self._via = via

    def container_started(self, seconds: float) -> None:
        """The run's container is started and staged."""
        self._metrics.container_started(seconds)

    def first_output(self, seconds: float) -> None:
        """The program printed its first byte, `seconds` after admission."""
        self._metrics.first_output(self._language, seconds)

    def ended(self, exit_message: Exit) -> None:
        """The run's `exit` is decided (sent or not)."""
        status = exit_message.status.value
        self._metrics.run_ended(self._language, status, exit_message.wall_ms / 1000)
        self._events.emit(
            "run_end",
            run_id=exit_message.run_id,
            language=self._language,
            status=status,
            stage=exit_message.stage,
            exit_code=exit_message.exit_code,
            signal=exit_message.signal,
            wall_ms=exit_message.wall_ms,
            output_bytes=exit_message.output_bytes,
            truncated=exit_message.truncated,
            message=exit_message.message,
            client=self._client,
            via=self._via,
        )


class PrepareTelemetry:
    """A `prepare`'s observer: counted apart from runs, since nothing ran."""

    def __init__(self, metrics: Metrics, events: EventLog, *, language: str, client: str) -> None:
        self._metrics = metrics
        self._events = events
        self._language = language
        self._client = client

    def container_started(self, seconds: float) -> None:
        self._metrics.container_started(seconds)

    def first_output(self, seconds: float) -> None:
        """Never called: a `prepare` runs nothing."""

    def ended(self, exit_message: Exit) -> None:
        status = exit_message.status.value
        self._metrics.prepare_ended(self._language, status)
        self._events.emit(
            "prepare_end",
            run_id=exit_message.run_id,
            language=self._language,
            status=status,
            wall_ms=exit_message.wall_ms,
            message=exit_message.message,
            client=self._client,
        )


class ClientTelemetry:
    """Telemetry bound to one client (hashed) and one door."""

    def __init__(self, metrics: Metrics, events: EventLog, *, client: str, via: Via) -> None:
        self._metrics = metrics
        self._events = events
        self._client = client
        self._via = via

    def run(self, language: str) -> RunTelemetry:
        """The observer of a new run in `language`."""
        return RunTelemetry(
            self._metrics, self._events, language=language, client=self._client, via=self._via
        )

    def prepare(self, language: str) -> PrepareTelemetry:
        """The observer of a new `prepare` in `language`."""
        return PrepareTelemetry(self._metrics, self._events, language=language, client=self._client)

    def refused(self, error: CeError) -> None:
        """A run was refused before it started."""
        self._metrics.rejected(error.code)
        self._events.emit(
            "refused", code=error.code, field=error.field, client=self._client, via=self._via
        )


class Telemetry:
    """The server's metrics and event log, handed out per client."""

    def __init__(self, metrics: Metrics, events: EventLog) -> None:
        self.metrics = metrics
        self.events = events

    # -- the sandbox's observer (`SandboxObserver`) --

    def box_started(self, seconds: float) -> None:
        self.metrics.box_started(seconds)

    def reaped(self, count: int) -> None:
        self.metrics.reaped(count)

    def run_placed(self, engine: str) -> None:
        self.metrics.run_placed(engine)

    def proxy_decision(
        self, *, policy: str, run_id: str | None, destination: str, verdict: str
    ) -> None:
        """One connection through an egress proxy: an audit line and the counter."""
        self.metrics.proxy_decision(policy, verdict)
        self.events.emit(
            "proxy_connection",
            run_id=run_id,
            policy=policy,
            destination=destination,
            verdict=verdict,
        )

    def for_client(self, client_key: str, *, via: Via) -> ClientTelemetry:
        """Telemetry for one client; called once per connection or request."""
        client = self.events.client_id(client_key)
        return ClientTelemetry(self.metrics, self.events, client=client, via=via)
