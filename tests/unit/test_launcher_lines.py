"""The launcher's marker lines: what follows one is output only once its whole line is read."""

from __future__ import annotations

import pytest

from ce_ws.sandbox.box import GO_MARKER, _after_line


@pytest.mark.parametrize(
    ("prelude", "after"),
    [
        (b"", None),
        (b"\x1e[ce-ready]\r\n", None),  # another marker's line
        (GO_MARKER, None),  # a terminal handed the marker over without its line's end
        (GO_MARKER + b"\r", None),
        (GO_MARKER + b"\r\n", b""),
        (GO_MARKER + b"\r\nbody\r\n", b"body\r\n"),
        (b"\x1e[ce-ready]\n" + GO_MARKER + b"\nhi\n", b"hi\n"),  # pipes: no CR
    ],
)
def test_what_follows_a_marker_waits_for_the_end_of_its_line(
    prelude: bytes, after: bytes | None
) -> None:
    assert _after_line(prelude, GO_MARKER) == after
