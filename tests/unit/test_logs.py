"""The event log: JSON lines, client identities hashed."""

from __future__ import annotations

import json
import logging

import pytest

from ce_ws.logs import EVENTS_LOGGER, EventLog


def test_client_id_is_stable_per_log_and_does_not_reveal_the_address() -> None:
    log, other = EventLog(), EventLog()
    assert log.client_id("203.0.113.7") == log.client_id("203.0.113.7")
    assert log.client_id("203.0.113.7") != log.client_id("203.0.113.8")
    assert log.client_id("203.0.113.7") != other.client_id("203.0.113.7")
    assert "203" not in log.client_id("203.0.113.7")


def test_each_event_is_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)
    EventLog().emit("refused", code="busy", field=None)
    (record,) = caplog.records
    line = record.getMessage()
    assert "\n" not in line
    event = json.loads(line)
    assert event["event"] == "refused" and event["code"] == "busy" and event["field"] is None
    assert isinstance(event["ts"], float)
