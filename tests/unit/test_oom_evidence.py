"""An OOM kill is told by the cgroup when the engine's `oom` event comes late."""

from __future__ import annotations

import pytest

from ce_ws.sandbox.base import Usage
from ce_ws.sandbox.box import killed_at_memory_limit

LIMIT = 32 << 20


@pytest.mark.parametrize(
    ("signal", "sent_kill", "usage", "oom"),
    [
        # The soak's case: SIGKILL nobody here sent, the peak at the limit.
        ("SIGKILL", False, Usage(memory_peak_bytes=LIMIT, cpu_ns=1), True),
        # The cgroup counted a kill (a child's, say): whatever the exit.
        (None, False, Usage(memory_peak_bytes=1 << 20, cpu_ns=1, oom_kills=1), True),
        # This server's own kill (the `kill` message, a clock) at the limit.
        ("SIGKILL", True, Usage(memory_peak_bytes=LIMIT, cpu_ns=1), False),
        # A program's own SIGKILL below the limit, or one whose peak is unknown.
        ("SIGKILL", False, Usage(memory_peak_bytes=LIMIT - 1, cpu_ns=1), False),
        ("SIGKILL", False, Usage(memory_peak_bytes=None, cpu_ns=None), False),
        # Page cache can fill the cgroup to its limit with no kill at all.
        (None, False, Usage(memory_peak_bytes=LIMIT, cpu_ns=1, oom_kills=0), False),
        ("SIGTERM", False, Usage(memory_peak_bytes=LIMIT, cpu_ns=1), False),
    ],
)  # fmt: skip
def test_an_oom_kill_is_recognised_without_its_event(
    signal: str | None, sent_kill: bool, usage: Usage, oom: bool
) -> None:
    assert (
        killed_at_memory_limit(signal, sent_kill=sent_kill, usage=usage, memory_limit_bytes=LIMIT)
        is oom
    )
