"""Piston v2's names and jobs: its languages as ours, its job as a `RunRequest`.

Pure logic (no I/O), shared by `POST /piston/api/v2/execute` and the
`/connect` WebSocket's `init` (results: `piston_result`). Refusals are
`CeError`s worded as Piston words them.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from ce_ws.api.compat.semver import satisfies
from ce_ws.config import MIB, MIN_MEMORY_MB, MIN_WALL_MS, Settings
from ce_ws.errors import BadMessage, LimitExceeded, UnknownLanguage, clip
from ce_ws.languages import Language, LanguageTable
from ce_ws.protocol import RunRequest, ServerMessage, validation_error_to_bad_message


@dataclass(frozen=True, slots=True)
class PistonName:
    """How Piston names one of our languages."""

    language: str
    aliases: tuple[str, ...] = ()
    #: Piston's package, where it differs from the language (node, gcc).
    runtime: str | None = None


#: Piston's names for ours (its packages' metadata); any other language of
#: ours is offered under its own name and aliases.
PISTON_NAMES = {
    "python": PistonName("python", ("py", "py3", "python3")),
    "javascript": PistonName(
        "javascript", ("node-javascript", "node-js", "javascript", "js"), runtime="node"
    ),
    "c": PistonName("c", ("gcc",), runtime="gcc"),
    "cpp": PistonName("c++", ("cpp", "g++"), runtime="gcc"),
    "bash": PistonName("bash", ("sh",)),
    "ruby": PistonName("ruby", ("ruby3", "rb")),
}


class PistonRuntime(ServerMessage):
    """One entry of `GET /piston/api/v2/runtimes`."""

    language: str
    version: str
    aliases: list[str]
    runtime: str | None = None
    omit_if_none = frozenset({"runtime"})


@dataclass(frozen=True, slots=True)
class PistonLanguage:
    """One of our languages as Piston lists and finds it."""

    language: Language
    runtime: PistonRuntime

    def answers_to(self, name: str) -> bool:
        """Piston matches the name or an alias exactly."""
        return name == self.runtime.language or name in self.runtime.aliases


def piston_languages(languages: LanguageTable) -> list[PistonLanguage]:
    """Every language of ours under Piston's name; its aliases add ours."""
    found = []
    for language in languages:
        name = PISTON_NAMES.get(language.name, PistonName(language.name))
        aliases = [name.language, *name.aliases, language.name, *language.aliases]
        runtime = PistonRuntime(
            language=name.language,
            version=language.version,
            aliases=[alias for alias in dict.fromkeys(aliases) if alias != name.language],
            runtime=name.runtime,
        )
        found.append(PistonLanguage(language, runtime))
    return found


def find_language(languages: LanguageTable, name: str, version: str | None) -> PistonLanguage:
    """The language a Piston job names, at a version its range allows."""
    spec = version or "*"  # Piston requires a version; piston-client omits it for aliases
    for candidate in piston_languages(languages):
        if candidate.answers_to(name) and satisfies(candidate.language.version, spec):
            return candidate
    raise UnknownLanguage(f"{clip(name)}-{clip(spec)} runtime is unknown", field="language")


# -- the job (request) --------------------------------------------------------


class PistonModel(BaseModel):
    # Unknown fields are ignored (the WebSocket's `type`, newer clients'
    # fields); known ones must have their JSON type.
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class PistonFile(PistonModel):
    """`files[]`: a name is optional; an unknown encoding is read as utf8, as Piston does."""

    name: str | None = None
    content: str
    encoding: str | None = None


class PistonJob(PistonModel):
    """`POST /piston/api/v2/execute`, and the WebSocket's `init`; limits in ms and bytes."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"language": "python", "version": "3.x", "files": [{"content": "print(1)"}]}
            ]
        }
    )

    language: str = Field(min_length=1, max_length=64)
    version: str | None = Field(None, min_length=1, max_length=64)
    files: list[PistonFile] = Field(max_length=64)
    stdin: str | None = None
    args: list[str] | None = None
    compile_timeout: float | None = None
    run_timeout: float | None = None
    compile_cpu_time: float | None = None
    run_cpu_time: float | None = None
    compile_memory_limit: float | None = None
    run_memory_limit: float | None = None
    #: When the server has tokens and the client no `Authorization: Bearer` header.
    token: str | None = None


#: Piston's own words for a field of the wrong type.
_FIELD_MESSAGES = {
    "language": "language is required as a string",
    "version": "version is required as a string",
    "files": "files is required as an array",
    "stdin": "stdin must be a string",
    "args": "args must be an array of strings",
    "token": "token must be a string",
}
_LIMITS = (
    "compile_timeout",
    "run_timeout",
    "compile_cpu_time",
    "run_cpu_time",
    "compile_memory_limit",
    "run_memory_limit",
)


def _piston_message(error: ErrorDetails) -> str:
    location = error["loc"]
    field = str(location[0]) if location else ""
    if field == "files" and error["type"] == "too_long":
        return "files may hold at most 64 files"
    if field == "files" and len(location) > 2 and location[2] != "content":
        return f"files[{location[1]}].{location[2]} must be a string"
    if field == "files" and len(location) > 1:
        return f"files[{location[1]}].content is required as a string"
    if field in _LIMITS:
        return f"If specified, {field} must be a number"
    return _FIELD_MESSAGES.get(field, f"invalid request: {error['msg']}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: bytes | str) -> Any:
    """A body or frame as JSON (no NaN or Infinity); raises `BadMessage`."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadMessage("the body is not valid JSON") from None


def parse_job(body: bytes | str) -> PistonJob:
    """A job from its JSON, whatever the Content-Type said; raises `BadMessage` in Piston's words.

    An empty body is an empty object, as Express's parser leaves it.
    """
    return job_of(parse_json(body) if body.strip() else {})


def job_of(document: Any) -> PistonJob:
    """A job from parsed JSON; anything but an object is read as an empty one, as Express does."""
    try:
        return PistonJob.model_validate(document if isinstance(document, dict) else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadMessage(_piston_message(first), field=".".join(map(str, first["loc"]))) from None


def _limit(job: PistonJob, name: str, maximum: int) -> float | None:
    """A Piston limit checked as Piston checks it: unset when 0 or absent, at most `maximum`."""
    value: float | None = getattr(job, name)
    if not value or (value == -1 and name.endswith("memory_limit")):
        return None  # -1: no limit asked (piston-client's default); ours applies
    if value > maximum:
        raise LimitExceeded(f"{name} cannot exceed the configured limit of {maximum}", field=name)
    if value < 0:
        raise BadMessage(f"{name} must be non-negative", field=name)
    return value


def run_limits(job: PistonJob, settings: Settings) -> dict[str, int]:
    """Piston's limits as ours: each is checked against our maximum; some only bound.

    `run_timeout` is the wall clock and `run_memory_limit` the memory (rounded
    up to whole MiB, raised to our floors); the compile limits and the CPU
    times are checked, and the server's own compile limit and wall clock apply.
    """
    memory_max = settings.maxima.memory_mb * MIB
    compile_max = settings.sandbox.compile_ms
    for name, maximum in (
        ("compile_timeout", compile_max),
        ("compile_cpu_time", compile_max),
        ("run_cpu_time", settings.maxima.wall_ms),
        ("compile_memory_limit", memory_max),
    ):
        _limit(job, name, maximum)
    limits: dict[str, int] = {}
    if (wall := _limit(job, "run_timeout", settings.maxima.wall_ms)) is not None:
        limits["wall_ms"] = max(MIN_WALL_MS, math.ceil(wall))
    if (memory := _limit(job, "run_memory_limit", memory_max)) is not None:
        limits["memory_mb"] = max(MIN_MEMORY_MB, math.ceil(memory / MIB))
    return limits


def _source_file(file: PistonFile, index: int, language: Language) -> dict[str, str]:
    """One file as ours: unnamed ones get Piston's `file<i>` and our entry's suffix."""
    name = file.name or f"file{index}{PurePosixPath(language.entry_file).suffix}"
    if file.encoding == "base64":
        return {"name": name, "content": file.content, "encoding": "base64"}
    if file.encoding == "hex":
        try:
            data = bytes.fromhex(file.content)
        except ValueError:
            raise BadMessage(f"files[{index}] is not valid hex", field="files") from None
        return {"name": name, "content": base64.b64encode(data).decode(), "encoding": "base64"}
    return {"name": name, "content": file.content, "encoding": "utf8"}


def _files(job: PistonJob, language: Language) -> list[dict[str, str]]:
    """The files, the first utf8 one first: Piston runs that one."""
    files = [_source_file(file, index, language) for index, file in enumerate(job.files)]
    text = [index for index, file in enumerate(job.files) if file.encoding in (None, "utf8")]
    if not text:
        raise BadMessage("files must include at least one utf8 encoded file", field="files")
    entry = files.pop(text[0])
    return [entry, *files]


def run_request(
    job: PistonJob, language: Language, settings: Settings, *, stdin: bool
) -> RunRequest:
    """The Runner's request for a job; `stdin` False for the WebSocket (Piston discards it)."""
    given = job.stdin or ""
    try:
        return RunRequest.model_validate(
            {
                "language": language.name,
                "files": _files(job, language),
                "args": job.args or [],
                # Piston ends the input with a newline if it has none.
                "stdin": (given if given.endswith("\n") else given + "\n") if stdin else None,
                "limits": run_limits(job, settings),
            }
        )
    except ValidationError as exc:
        raise validation_error_to_bad_message(exc) from None
