"""REST pieces that need no engine: error statuses, the batch client's output."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from ce_ws.api.batch import BatchCollector
from ce_ws.api.http import error_response, http_status
from ce_ws.errors import (
    BadMessage,
    BodyTimeout,
    BodyTooLarge,
    Busy,
    CeError,
    CodeTooLarge,
    LimitExceeded,
    RateLimited,
    SandboxError,
    Unauthorized,
    UnknownLanguage,
)
from ce_ws.languages import load_languages
from ce_ws.protocol import ExecuteResponse, Exit, Stage, Status
from ce_ws.types import COMPILER, STDERR, STDOUT


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadMessage("x"), 400),
        (UnknownLanguage("x"), 400),
        (CodeTooLarge("x"), 400),
        (LimitExceeded("x"), 400),
        (BodyTooLarge("x"), 413),
        (BodyTimeout("x"), 408),
        (Unauthorized("x"), 401),
        (RateLimited("x"), 429),
        (Busy("x"), 503),
        (SandboxError("x"), 500),
        (CeError("x"), 500),
    ],
)
def test_each_refusal_has_its_http_status(error: CeError, status: int) -> None:
    assert http_status(error) == status


def test_busy_and_rate_limited_say_when_to_retry() -> None:
    assert "Retry-After" in error_response(Busy("full")).headers
    assert "Retry-After" in error_response(RateLimited("slow down")).headers
    assert "Retry-After" not in error_response(BadMessage("no")).headers
    assert error_response(Unauthorized("who")).headers["WWW-Authenticate"] == "Bearer"
    assert error_response(Busy("full")).status == HTTPStatus.SERVICE_UNAVAILABLE


def _respond(client: BatchCollector, **exit_fields: object) -> ExecuteResponse:
    return client.response(_exit(**exit_fields), load_languages().resolve("c"))


def _exit(**fields: object) -> Exit:
    values: dict[str, object] = {
        "run_id": "r1",
        "stage": "run",
        "status": Status.EXITED,
        "exit_code": 0,
        "signal": None,
        "wall_ms": 5,
        "output_bytes": 0,
        "truncated": False,
        **fields,
    }
    return Exit.model_validate(values)


async def test_streams_stay_apart_and_interleave_in_arrival_order() -> None:
    client = BatchCollector()
    euro = "€".encode()
    await client.send_output(b"a" + euro[:1], STDOUT)
    await client.send_output(b"E1\n", STDERR)
    await client.send_output(euro[1:] + b"\n", STDOUT)
    result = _respond(client)
    assert (result.stdout, result.stderr) == ("a€\n", "E1\n")
    # A character cut between two chunks of one stream is never split.
    assert result.output == "aE1\n€\n"


async def test_a_truncated_character_at_the_end_is_replaced() -> None:
    client = BatchCollector()
    await client.send_output("€".encode()[:2], STDOUT)
    assert _respond(client).stdout == "\ufffd"


async def test_compile_stage_is_reported_when_one_ran() -> None:
    assert _respond(BatchCollector()).compile is None
    compiled = BatchCollector()
    await compiled.send(Stage(stage="compile"))
    await compiled.send_output(b"warning\n", COMPILER)
    ok = _respond(compiled).compile
    assert ok is not None and (ok.status, ok.exit_code, ok.output) == ("exited", 0, "warning\n")
    failed = _respond(compiled, stage="compile", status=Status.COMPILE_ERROR, exit_code=1).compile
    assert failed is not None and (failed.status, failed.exit_code) == ("compile_error", 1)
