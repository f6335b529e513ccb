"""The test server with its Python heap measured: `python -m tests.traced_server serve`.

The spec recorder's server (`tests.spec_recorder`), plus `tracemalloc`
started once the server's modules are imported, and a thread that every
`HEAP_EVERY_S` runs a full garbage collection and writes what Python still
holds (bytes, traced since the start) to the file named by `HEAP_FILE_ENV`.
The soak test reads it: unlike RSS, which climbs for hundreds of runs while
the allocator's arenas fill to the high-water mark of 16 live runs, the
collected heap holds only what the server keeps, so anything it keeps per
run shows from the first runs on. The collection runs off the event loop's
thread as CPython's own automatic ones may (any thread that allocates).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import tracemalloc
from pathlib import Path

from bench.soak import HEAP_FILE_ENV
from ce_ws.__main__ import main
from tests.spec_recorder import RECORD_ENV, file_sink, hook

HEAP_EVERY_S = 1.0
#: One frame per trace: the size is all the test reads, and deeper stacks slow every allocation.
_FRAMES = 1


def _report_heap(path: Path, stop: threading.Event) -> None:
    spare = path.with_name(path.name + ".new")
    while not stop.wait(HEAP_EVERY_S):
        gc.collect()
        spare.write_text(str(tracemalloc.get_traced_memory()[0]))
        os.replace(spare, path)  # the reader sees a whole number, never half of one


if __name__ == "__main__":
    tracemalloc.start(_FRAMES)
    stop = threading.Event()
    reporter = threading.Thread(
        target=_report_heap, args=(Path(os.environ[HEAP_FILE_ENV]), stop), daemon=True
    )
    reporter.start()
    try:
        code = main(sys.argv[1:], on_container_created=hook(file_sink(os.environ[RECORD_ENV])))
    finally:
        stop.set()
    sys.exit(code)
