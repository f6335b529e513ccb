"""JSON in pieces: the same document as the one-shot serializer, in bounded steps."""

from __future__ import annotations

import json

from ce_ws.api.jsonstream import PIECE, json_pieces
from ce_ws.protocol import CompileResult, ExecuteResponse, Status

# Quotes, backslashes, control bytes, a terminal escape, multibyte and astral characters.
NASTY = 'plain "quoted" back\\slash \x00\x07\x1b[2J tab\t line\n € 𝄞 \ufffd '


def big_response() -> ExecuteResponse:
    long = NASTY * (3 * PIECE // len(NASTY) + 1)
    return ExecuteResponse(
        run_id="r1",
        language="c",
        version="12.2.0",
        status=Status.OUTPUT_LIMIT,
        exit_code=None,
        signal=None,
        stdout=long,
        stderr=NASTY,
        output=long + NASTY,
        wall_ms=5,
        output_bytes=len(long.encode()),
        truncated=True,
        compile=CompileResult(status=Status.EXITED, exit_code=0, output=long),
        id="req-1",
    )


def test_pieces_make_the_same_document_as_to_json() -> None:
    response = big_response()
    assert json.loads("".join(json_pieces(response.to_data()))) == json.loads(response.to_json())


def test_no_piece_serializes_more_than_a_piece_of_text() -> None:
    pieces = list(json_pieces(big_response().to_data()))
    # An escaped character takes at most 6 characters (\u001b).
    assert max(len(piece) for piece in pieces) <= 6 * PIECE
    assert len(pieces) > 3 * 3  # each long string came in several pieces
