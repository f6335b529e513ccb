"""Judge0 submission views: the fields asked for, in Base64 or as text, and their models.

`submission_view` is what `GET /submissions/{token}` answers; the models
below describe the answers for the OpenAPI document.
"""

from __future__ import annotations

import base64
from datetime import datetime
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict

from ce_ws.api.compat.judge0_mapping import Judge0Languages
from ce_ws.api.compat.judge0_store import Judge0Submission
from ce_ws.api.compat.judge0_wire import Judge0Refusal

#: Every field of a submission view, in Judge0's order (its table's columns, then two more).
ALL_FIELDS = (
    "source_code", "language_id", "stdin", "expected_output", "stdout", "status_id",
    "created_at", "finished_at", "time", "memory", "stderr", "token", "number_of_runs",
    "cpu_time_limit", "cpu_extra_time", "wall_time_limit", "memory_limit", "stack_limit",
    "max_processes_and_or_threads", "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit", "max_file_size", "compile_output",
    "exit_code", "exit_signal", "message", "wall_time", "compiler_options",
    "command_line_arguments", "redirect_stderr_to_stdout", "callback_url",
    "additional_files", "enable_network", "status", "language",
)  # fmt: skip
DEFAULT_FIELDS = (
    "token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status",
)  # fmt: skip
_TEXT_FIELDS = ("source_code", "stdin", "expected_output", "stdout", "stderr", "compile_output")
_CONVERSION = (
    "some attributes for this submission cannot be converted to UTF-8, "
    "use base64_encoded=true query parameter"
)


def parse_fields(text: str | None) -> tuple[str, ...]:
    """The `fields` query parameter: `*` is every field, none the default eight."""
    asked = (text or "").split(",")
    while asked and not asked[-1]:
        asked.pop()  # as Ruby's `split` drops trailing empty strings
    invalid = [field for field in asked if field != "*" and field not in ALL_FIELDS]
    if invalid:
        raise Judge0Refusal.error(HTTPStatus.BAD_REQUEST, f"invalid fields: [{', '.join(invalid)}]")
    if "*" in asked:
        return ALL_FIELDS
    return tuple(field for field in ALL_FIELDS if field in asked) or DEFAULT_FIELDS


# -- views ------------------------------------------------------------------


def _timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _decimal(value: float | None) -> str | None:
    """Judge0's decimal columns go out as strings ("0.012")."""
    return None if value is None else f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def _text(value: bytes | None, encoded: bool) -> str | None:
    if value is None:
        return None
    if encoded:
        return base64.b64encode(value).decode()
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise Judge0Refusal.error(HTTPStatus.BAD_REQUEST, _CONVERSION) from None


def _all_values(
    submission: Judge0Submission, languages: Judge0Languages, encoded: bool
) -> dict[str, Any]:
    limits = submission.limits
    language = languages.by_id.get(submission.language_id)
    message = submission.message
    if encoded and message is not None:
        message = base64.b64encode(message.encode()).decode()
    return {
        **{field: _text(getattr(submission, field), encoded) for field in _TEXT_FIELDS},
        "language_id": submission.language_id,
        "status_id": submission.status.value,
        "created_at": _timestamp(submission.created_at),
        "finished_at": _timestamp(submission.finished_at),
        "time": _decimal(submission.time),
        "memory": submission.memory,
        "token": submission.token,
        "number_of_runs": submission.number_of_runs,
        "cpu_time_limit": _decimal(limits.cpu_time_limit),
        "cpu_extra_time": _decimal(limits.cpu_extra_time),
        "wall_time_limit": _decimal(limits.wall_time_limit),
        "memory_limit": limits.memory_limit,
        "stack_limit": limits.stack_limit,
        "max_processes_and_or_threads": limits.max_processes_and_or_threads,
        "enable_per_process_and_thread_time_limit": False,
        "enable_per_process_and_thread_memory_limit": False,
        "max_file_size": limits.max_file_size,
        "exit_code": submission.exit_code,
        "exit_signal": submission.exit_signal,
        "message": message,
        "wall_time": _decimal(submission.wall_time),
        "compiler_options": None,
        "command_line_arguments": submission.command_line_arguments,
        "redirect_stderr_to_stdout": submission.redirect_stderr_to_stdout,
        "callback_url": None,
        "additional_files": None,
        "enable_network": False,
        "status": {"id": submission.status.value, "description": submission.status.description},
        "language": {"id": submission.language_id, "name": language.name if language else None},
    }


def submission_view(
    submission: Judge0Submission,
    *,
    fields: tuple[str, ...],
    encoded: bool,
    languages: Judge0Languages,
) -> dict[str, Any]:
    """A submission as `GET /submissions/{token}` shows it (only `fields`)."""
    values = _all_values(submission, languages, encoded)
    return {field: values[field] for field in fields}


# -- response models, for the OpenAPI document ------------------------------


class StatusView(BaseModel):
    id: int
    description: str


class LanguageName(BaseModel):
    id: int
    name: str | None


class LanguageDetail(LanguageName):
    is_archived: bool
    source_file: str
    compile_cmd: str | None
    run_cmd: str


class SubmissionView(BaseModel):
    """A submission; only the fields asked for (`fields`) are present."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = None
    source_code: str | None = None
    language_id: int | None = None
    stdin: str | None = None
    expected_output: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    compile_output: str | None = None
    status_id: int | None = None
    status: StatusView | None = None
    language: LanguageName | None = None
    created_at: str | None = None
    finished_at: str | None = None
    time: str | None = None
    wall_time: str | None = None
    memory: int | None = None
    number_of_runs: int | None = None
    cpu_time_limit: str | None = None
    cpu_extra_time: str | None = None
    wall_time_limit: str | None = None
    memory_limit: int | None = None
    stack_limit: int | None = None
    max_processes_and_or_threads: int | None = None
    enable_per_process_and_thread_time_limit: bool | None = None
    enable_per_process_and_thread_memory_limit: bool | None = None
    max_file_size: int | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    message: str | None = None
    compiler_options: str | None = None
    command_line_arguments: str | None = None
    redirect_stderr_to_stdout: bool | None = None
    callback_url: str | None = None
    additional_files: str | None = None
    enable_network: bool | None = None


class TokenView(BaseModel):
    token: str


class BatchView(BaseModel):
    """`GET /submissions/batch`: null for a token not (or no longer) known."""

    submissions: list[SubmissionView | None]


class ErrorView(BaseModel):
    error: str


class NotFoundView(BaseModel):
    status: int
    error: str


class AboutView(BaseModel):
    version: str
    homepage: str | None
    source_code: str | None
    maintainer: str | None
