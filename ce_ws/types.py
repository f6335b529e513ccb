"""Type aliases shared across layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

#: Receives terminal output bytes in arrival order; awaiting it is backpressure.
OutputSink = Callable[[bytes], Awaitable[None]]
#: The label value identifying one run's container and staging directory.
RunId = str
