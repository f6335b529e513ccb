"""Judge0's requests: a submission parsed and checked as Judge0 checks it.

Pure functions over pydantic models (the OpenAPI document is generated
from the same models). Refusals carry Judge0's own bodies: field errors
`{"language_id": ["..."]}` (422), or `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from ce_ws.api.compat.judge0_mapping import (
    Judge0Language,
    Judge0Languages,
    Judge0Limits,
    LimitRange,
    limit_ranges,
    our_limits,
)
from ce_ws.config import Settings
from ce_ws.protocol import RunRequest, SourceFile

FieldErrors = dict[str, list[str]]


class Judge0Refusal(Exception):
    """A request Judge0 would refuse: its HTTP status and Judge0's body."""

    def __init__(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body

    @classmethod
    def error(cls, status: HTTPStatus, message: str) -> Judge0Refusal:
        return cls(status, {"error": message})


class Judge0Invalid(Judge0Refusal):
    """A submission with field errors (Judge0's 422 body)."""

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__(HTTPStatus.UNPROCESSABLE_ENTITY, dict(errors))
        self.errors = errors


# -- requests ---------------------------------------------------------------


def _number_or_text(value: object) -> object:
    """Numbers may come as JSON numbers or as strings of them; never as booleans."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | None):
        raise ValueError("is not a number")
    return value


def _boolean_or_text(value: object) -> object:
    """Booleans may come as JSON booleans or as strings ("true"); never as numbers."""
    if not isinstance(value, bool | str | None):
        raise ValueError("is not a boolean")
    return value


def _lax(json_type: str) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": json_type}, {"type": "string"}, {"type": "null"}]})


Integer = Annotated[int | None, BeforeValidator(_number_or_text), _lax("number")]
Number = Annotated[float | None, BeforeValidator(_number_or_text), _lax("number")]
Boolean = Annotated[bool | None, BeforeValidator(_boolean_or_text), _lax("boolean")]


class SubmissionRequest(BaseModel):
    """A Judge0 submission as sent (`POST /submissions`); unknown fields are ignored, as Rails does.

    Numbers may come as strings ("71"), as Judge0 accepts them. The
    ranges depend on the server's limits: `GET /config_info` gives them.
    """

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"source_code": "print('hi')", "language_id": 71}]},
    )

    source_code: str | None = None
    language_id: Integer = None
    compiler_options: str | None = Field(None, max_length=512)
    command_line_arguments: str | None = Field(None, max_length=512)
    number_of_runs: Integer = None
    stdin: str | None = None
    expected_output: str | None = None
    cpu_time_limit: Number = None
    cpu_extra_time: Number = None
    wall_time_limit: Number = None
    memory_limit: Integer = None
    stack_limit: Integer = None
    max_processes_and_or_threads: Integer = None
    enable_per_process_and_thread_time_limit: Boolean = None
    enable_per_process_and_thread_memory_limit: Boolean = None
    max_file_size: Integer = None
    redirect_stderr_to_stdout: Boolean = None
    callback_url: str | None = None
    additional_files: str | None = None
    enable_network: Boolean = None


class BatchRequest(BaseModel):
    """`POST /submissions/batch`."""

    submissions: list[SubmissionRequest]


@dataclass(frozen=True, slots=True)
class ParsedSubmission:
    """A submission that passed Judge0's checks, in bytes and with defaults applied."""

    language: Judge0Language
    source_code: bytes
    stdin: bytes | None
    expected_output: bytes | None
    limits: Judge0Limits
    args: list[str]
    command_line_arguments: str | None
    redirect_stderr_to_stdout: bool

    def run_request(self, settings: Settings) -> RunRequest:
        """What to run, in our terms (the source staged as the language's entry file)."""
        entry = SourceFile(
            name=self.language.language.entry_file,
            content=base64.b64encode(self.source_code).decode(),
            encoding="base64",
        )
        return RunRequest(
            language=self.language.language.name,
            files=[entry],
            args=self.args,
            stdin=self.stdin.decode() if self.stdin is not None else None,
            limits=our_limits(self.limits, settings.maxima),
        )


def _fields_checked_by(check: Callable[[object], object]) -> frozenset[str]:
    """The request's fields whose values `check` vets (for the message of a wrong type)."""
    return frozenset(
        name
        for name, info in SubmissionRequest.model_fields.items()
        if any(getattr(meta, "func", None) is check for meta in info.metadata)
    )


_NUMBER_FIELDS = _fields_checked_by(_number_or_text)
_BOOLEAN_FIELDS = _fields_checked_by(_boolean_or_text)


def _type_errors(exc: ValidationError) -> FieldErrors:
    errors: FieldErrors = {}
    for error in exc.errors():
        field = str(error["loc"][0])
        kind = error["type"]
        if kind.startswith(("int", "float", "finite")) or field in _NUMBER_FIELDS:
            message = "is not a number"
        elif kind.startswith("bool") or field in _BOOLEAN_FIELDS:
            message = "is not a boolean"
        elif kind == "string_too_long":
            message = "is too long (maximum is 512 characters)"
        else:
            message = "is not a string"
        errors.setdefault(field, []).append(message)
    return errors


def _decoded(value: str | None, field: str, encoded: bool, errors: FieldErrors) -> bytes | None:
    if value is None:
        return None
    if not encoded:
        return value.encode()
    try:
        return base64.b64decode(value)  # like Ruby's decode64: stray characters are skipped
    except binascii.Error:
        errors.setdefault(field, []).append("is not valid Base64")
        return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_range(limit: LimitRange, value: float | None, errors: FieldErrors) -> float:
    if value is None:
        return limit.default
    if limit.above_minimum and value <= limit.minimum:
        errors.setdefault(limit.field, []).append(f"must be greater than {_number(limit.minimum)}")
    elif value < limit.minimum:
        errors.setdefault(limit.field, []).append(
            f"must be greater than or equal to {_number(limit.minimum)}"
        )
    elif value > limit.maximum:
        errors.setdefault(limit.field, []).append(
            f"must be less than or equal to {_number(limit.maximum)}"
        )
    return value


#: Judge0 options this server does not offer, and Judge0's refusal of each when set.
_NOT_OFFERED = {
    "compiler_options": "setting compiler options is not allowed",
    "callback_url": "setting callback is not allowed",
    "additional_files": "setting additional files is not allowed",
    "enable_network": "enabling network is not allowed",
    "enable_per_process_and_thread_time_limit": "this option cannot be enabled",
    "enable_per_process_and_thread_memory_limit": "this option cannot be enabled",
}


def _blank(value: object) -> bool:
    """Rails' `blank?`: None, False, or a string of only whitespace."""
    return value is None or value is False or (isinstance(value, str) and not value.strip())


def _check_offered(request: SubmissionRequest, errors: FieldErrors) -> None:
    for field, message in _NOT_OFFERED.items():
        if not _blank(getattr(request, field)):
            errors.setdefault(field, []).append(message)
    if request.number_of_runs is not None and request.number_of_runs != 1:
        errors.setdefault("number_of_runs", []).append(
            "must be 1" if request.number_of_runs > 0 else "must be greater than 0"
        )


def _language(
    language_id: int | None, languages: Judge0Languages, errors: FieldErrors
) -> Judge0Language | None:
    if language_id is None:
        errors.setdefault("language_id", []).append("can't be blank")
        return None
    found = languages.by_id.get(language_id)
    if found is None:
        errors.setdefault("language_id", []).append(f"language with id {language_id} doesn't exist")
    return found


def _args(text: str | None, errors: FieldErrors) -> list[str]:
    if text is None:
        return []
    try:
        return shlex.split(text)
    except ValueError as exc:
        errors.setdefault("command_line_arguments", []).append(f"cannot be split: {exc}")
        return []


def parse_submission(
    data: object, *, encoded: bool, settings: Settings, languages: Judge0Languages
) -> ParsedSubmission:
    """Check one submission as Judge0 does; raises `Judge0Invalid` with every field error."""
    try:
        request = SubmissionRequest.model_validate(data if isinstance(data, dict) else {})
    except ValidationError as exc:
        raise Judge0Invalid(_type_errors(exc)) from None
    errors: FieldErrors = {}
    source = _decoded(request.source_code, "source_code", encoded, errors)
    if "source_code" not in errors and (source is None or not source.strip()):
        errors["source_code"] = ["can't be blank"]
    stdin = _decoded(request.stdin, "stdin", encoded, errors)
    if stdin is not None and not _is_utf8(stdin):
        errors.setdefault("stdin", []).append("must be UTF-8 text")
    expected = _decoded(request.expected_output, "expected_output", encoded, errors)
    language = _language(request.language_id, languages, errors)
    limits = {
        limit.field: _check_range(limit, getattr(request, limit.field), errors)
        for limit in limit_ranges(settings)
    }
    _check_offered(request, errors)
    args = _args(request.command_line_arguments, errors)
    if errors or language is None or source is None:
        raise Judge0Invalid(errors)
    return ParsedSubmission(
        language=language,
        source_code=source,
        stdin=stdin,
        expected_output=expected,
        limits=Judge0Limits.model_validate(limits),
        args=args,
        command_line_arguments=request.command_line_arguments,
        redirect_stderr_to_stdout=bool(request.redirect_stderr_to_stdout),
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def is_true(value: str | None) -> bool:
    """Judge0's boolean query parameters: only "true" is true."""
    return value == "true"
