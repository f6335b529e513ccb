"""Structured event log: one JSON line per run end and per refusal.

Events go to the `ce_ws.events` logger, each message a JSON object.
`configure_event_log()` (called by `serve`) prints them as bare JSON lines.
They never hold the code, the input or the output; the client is identified
by a keyed hash of its address, stable for the life of the process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sys
import time
from typing import Any

EVENTS_LOGGER = "ce_ws.events"
_CLIENT_ID_HEX = 16


def configure_event_log() -> None:
    """Print events as bare JSON lines on stderr; called once by `serve`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(EVENTS_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class EventLog:
    """Writes the events of one server; client identities hashed with a per-process key."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(EVENTS_LOGGER)
        self._key = secrets.token_bytes(32)

    def client_id(self, client_key: str) -> str:
        """A stable, non-reversible identity for a client address."""
        digest = hmac.new(self._key, client_key.encode(), hashlib.sha256).hexdigest()
        return digest[:_CLIENT_ID_HEX]

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event line; `fields` must be JSON values."""
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        self._logger.info(json.dumps(record, separators=(",", ":")))
