"""The control budget: a token bucket with a burst (pure logic only).

The proof against the real engine is tests/hostile/test_control_messages.py.
"""

from __future__ import annotations

import pytest

from ce_ws.admission import TokenBucket


def test_a_bucket_with_a_burst_allows_the_burst_then_its_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("ce_ws.admission.time.monotonic", lambda: now[0])
    bucket = TokenBucket(20 * 60, burst=100)
    assert sum(bucket.take() for _ in range(500)) == 100
    now[0] += 1.0  # a second refills 20
    assert sum(bucket.take() for _ in range(500)) == 20
    now[0] += 3600  # never more than the burst
    assert sum(bucket.take() for _ in range(500)) == 100
