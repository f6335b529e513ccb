"""One run's recording, written while it goes: an asciicast v2 file.

A `Tap` beside the run's owner: it sees exactly the bytes the presenter
sees, in order, and writes a header at `started`, an `"o"` event per output
frame and an `"r"` event per resize; never the input (the terminal's echo
is already in the output). Output is text in asciicast: it is decoded as
UTF-8 incrementally (a character split across frames is kept whole; bytes
that are not UTF-8 become U+FFFD).
"""

from __future__ import annotations

import codecs
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ce_ws.protocol import Exit, ServerMessage, Started
from ce_ws.types import StreamId

log = logging.getLogger(__name__)

ASCIICAST_VERSION = 2


class Recorder:
    """Writes one recording to `part` and hands it to `on_done` when the run ends.

    Parameters: `part`, the file written while recording (created, never
    followed); `max_bytes`, where the file stops growing; `on_done(kept)`,
    called once, with whether the recording was finished (else it is gone).
    """

    def __init__(self, part: Path, *, max_bytes: int, on_done: Callable[[bool], None]) -> None:
        self._part = part
        self._max_bytes = max_bytes
        self._on_done = on_done
        self._size = (80, 24)
        self._file: IO[str] | None = None
        self._written = 0
        self._full = False
        self._start = 0.0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._done = False

    def message(self, message: ServerMessage) -> None:
        if isinstance(message, Started) and self._file is None and not self._done:
            self._begin(f"{message.language} {message.version}")
        elif isinstance(message, Exit):
            self.ended()

    def output(self, data: bytes, stream: StreamId) -> None:
        self._event("o", self._decoder.decode(data))

    def resize(self, cols: int, rows: int) -> None:
        if self._file is None:
            self._size = (cols, rows)  # before the header: its width and height
        else:
            self._event("r", f"{cols}x{rows}")

    def ended(self) -> None:
        """The run is over: keep the recording if it began, else remove what exists."""
        if self._done:
            return
        self._done = True
        kept = self._file is not None
        try:
            if self._file is not None:
                self._event("o", self._decoder.decode(b"", final=True), closing=True)
                self._file.close()
        except OSError:
            log.exception("finishing recording %s failed", self._part)
            kept = False
        self._file = None
        self._on_done(kept)

    def _begin(self, title: str) -> None:
        try:
            fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            self._file = open(fd, "w", encoding="utf-8")  # noqa: SIM115 (closed in `ended`)
        except OSError:
            log.exception("cannot start recording %s", self._part)
            self._done = True
            self._on_done(False)
            return
        self._start = time.monotonic()
        cols, rows = self._size
        header = {
            "version": ASCIICAST_VERSION,
            "width": cols,
            "height": rows,
            "timestamp": int(time.time()),
            "title": title,
        }
        self._write(json.dumps(header) + "\n")

    def _event(self, kind: str, data: str, *, closing: bool = False) -> None:
        if self._file is None or not data or (self._done and not closing):
            return
        elapsed = round(time.monotonic() - self._start, 6)
        self._write(json.dumps([elapsed, kind, data], ensure_ascii=False) + "\n")

    def _write(self, line: str) -> None:
        size = len(line.encode())
        if self._file is None or self._full or self._written + size > self._max_bytes:
            self._full = True  # over its budget the recording stops; what it has is kept
            return
        try:
            self._file.write(line)
        except OSError:
            log.exception("writing recording %s failed", self._part)
            return
        self._written += size
