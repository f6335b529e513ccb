"""Wire messages parse into models or fail as `bad_message` naming the field."""

from __future__ import annotations

import pytest

from ce_ws.errors import ECHO_CHARS, MESSAGE_CHARS, BadMessage, clip
from ce_ws.protocol import (
    ErrorMessage,
    Exit,
    ResizeMessage,
    RunMessage,
    SignalMessage,
    Status,
    message_id,
    parse_client_message,
    parse_execute_request,
)


def test_run_message_gets_defaults() -> None:
    message = parse_client_message('{"type": "run", "language": "py", "code": "print(1)"}')
    assert isinstance(message, RunMessage)
    assert (message.tty.cols, message.tty.rows, message.output, message.flow_control) == (
        80,
        24,
        "binary",
        False,
    )


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    message = parse_client_message('{"type": "resize", "cols": 90, "rows": 30, "dpi": 2}')
    assert message == ResizeMessage(type="resize", cols=90, rows=30)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"type": "resize", "cols": 501, "rows": 10}', "cols"),
        ('{"type": "resize", "cols": 10, "rows": 201}', "rows"),
        ('{"type": "signal", "signal": "SIGSEGV"}', "signal"),
        ('{"type": "nope"}', None),
        ("not json", None),
        # Wrong JSON types are refused, not coerced.
        ('{"type": "resize", "cols": "80", "rows": 24}', "cols"),
        ('{"type": "ack", "bytes": true}', "bytes"),
        ('{"type": "run", "language": "bash", "code": "x", "flow_control": 1}', "flow_control"),
        (
            '{"type": "run", "language": "bash", "code": "x", "limits": {"wall_ms": "5"}}',
            "limits.wall_ms",
        ),
    ],
)
def test_invalid_messages_name_the_field(raw: str, field: str | None) -> None:
    with pytest.raises(BadMessage) as caught:
        parse_client_message(raw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"type": "run", "language": "python", "language": "bash", "code": "x"}', "language"),
        ('{"type": "stdin", "data": "a", "type": "stdin"}', "type"),
        (
            '{"type": "run", "language": "bash", "code": "x", "tty": {"cols": 1, "cols": 2}}',
            "tty.cols",
        ),
        # in a field the server ignores, too: a proxy may not ignore it
        ('{"type": "ping", "extra": [{"k": 1}, {"k": 1, "k": 2}]}', "extra.1.k"),
    ],
)
def test_duplicate_keys_in_a_message_are_refused(raw: str, field: str) -> None:
    with pytest.raises(BadMessage) as caught:
        parse_client_message(raw)
    assert caught.value.field == field
    assert "duplicate" in caught.value.message


def test_duplicate_keys_in_an_execute_body_are_refused() -> None:
    body = b'{"language": "bash", "code": "x", "limits": {"pids": 8, "pids": 64}}'
    with pytest.raises(BadMessage) as caught:
        parse_execute_request(body)
    assert caught.value.field == "limits.pids"


def test_the_same_key_in_different_objects_is_fine() -> None:
    raw = '{"type": "run", "language": "bash", "code": "x", "tty": {"cols": 90}, "limits": {}}'
    assert isinstance(parse_client_message(raw), RunMessage)
    parse_execute_request(b'{"language": "bash", "files": [{"name": "a", "content": "1"},'
                          b' {"name": "b", "content": "2"}]}')  # fmt: skip


def test_a_message_quoting_a_huge_input_is_bounded() -> None:
    with pytest.raises(BadMessage) as caught:
        parse_client_message('{"type": "' + "x" * 100_000 + '"}')  # pydantic quotes the tag
    assert len(caught.value.message) == MESSAGE_CHARS + 1 and caught.value.message.endswith("…")
    assert str(caught.value) == caught.value.message


def test_clip_keeps_short_values_and_marks_a_cut() -> None:
    assert clip("3.11") == "3.11"
    assert clip("9" * 1000) == "9" * ECHO_CHARS + "…"


def test_deep_nesting_is_a_bad_message_not_a_crash() -> None:
    with pytest.raises(BadMessage):
        parse_client_message("[" * 100_000 + "]" * 100_000)


def test_every_contract_signal_is_accepted() -> None:
    for name in (
        "SIGINT",
        "SIGTERM",
        "SIGKILL",
        "SIGQUIT",
        "SIGHUP",
        "SIGUSR1",
        "SIGUSR2",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
    ):
        assert parse_client_message(f'{{"type": "signal", "signal": "{name}"}}') == SignalMessage(
            type="signal", signal=name
        )


def test_exit_keeps_nullable_fields_and_drops_unset_optional_ones() -> None:
    exit_message = Exit(
        run_id="r", stage="run", status=Status.EXITED, exit_code=None, signal=None,
        wall_ms=5, output_bytes=0, truncated=False,
    )  # fmt: skip
    json = exit_message.to_json()
    assert '"exit_code":null' in json and '"signal":null' in json
    assert "memory_peak_bytes" not in json and '"id"' not in json and "message" not in json


def test_error_field_is_omitted_when_unknown() -> None:
    assert "field" not in ErrorMessage(code="busy", message="full").to_json()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "prepare", "id": "p1", "files": []}', "p1"),
        ('{"type": "run", "id": 7}', 7),
        ('{"type": "run", "id": true}', None),
        ('{"type": "run", "id": [1]}', None),
        ('{"type": "run", "id": "' + "x" * 257 + '"}', None),
        ('["run"]', None),
        ("not json", None),
        ("[" * 100_000, None),
    ],
)
def test_the_id_of_a_message_that_failed_validation(text: str, expected: object) -> None:
    assert message_id(text) == expected
