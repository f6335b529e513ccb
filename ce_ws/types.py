"""Type aliases shared across layers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

#: Where a chunk of output came from (values of Docker's stream header).
StreamId = int
STDOUT: StreamId = 1
STDERR: StreamId = 2
#: The compile stage's output (stdout and stderr of the compiler, merged).
COMPILER: StreamId = 3
#: Receives output bytes in arrival order; awaiting it is backpressure.
OutputSink = Callable[[bytes, StreamId], Awaitable[None]]
