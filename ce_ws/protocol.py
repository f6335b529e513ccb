"""Every wire message as a pydantic model (contract: docs/protocol.md).

One discriminated union per direction. `parse_client_message` is the only
place a client's text frame becomes a model; server messages serialize with
`ServerMessage.to_json`, which leaves out optional fields that are unset.
"""

from __future__ import annotations

import base64
import binascii
import json
from enum import IntEnum, StrEnum
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from ce_ws.config import (
    MIN_CPU_MS,
    MIN_CPUS,
    MIN_IDLE_MS,
    MIN_MEMORY_MB,
    MIN_OUTPUT_BYTES,
    MIN_PIDS,
    MIN_WALL_MS,
)
from ce_ws.errors import BadMessage, CeError, clip

PROTOCOL_VERSION = 1
SUBPROTOCOL = "ce.v1"
#: The most files one run may have.
MAX_FILES = 64


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013


class Status(StrEnum):
    """`exit.status`: how a run ended."""

    EXITED = "exited"
    COMPILE_ERROR = "compile_error"
    TIMEOUT = "timeout"
    IDLE_TIMEOUT = "idle_timeout"
    OOM = "oom"
    OUTPUT_LIMIT = "output_limit"
    KILLED = "killed"
    ERROR = "error"


class Limit(StrEnum):
    """`exit.limit`: which clock ended a `timeout` or `idle_timeout` run."""

    CPU = "cpu"  # the run stage used its `cpu_ms` of CPU time
    WALL = "wall"  # the wall clock: the run stage's `wall_ms`, or the compile stage's own
    IDLE = "idle"  # no input and no output for `idle_ms`


Signal = Literal[
    "SIGINT", "SIGTERM", "SIGKILL", "SIGQUIT", "SIGHUP",
    "SIGUSR1", "SIGUSR2", "SIGCONT", "SIGSTOP", "SIGTSTP",
]  # fmt: skip


class _Inbound(BaseModel):
    # Unknown fields are ignored so newer clients still talk to this server;
    # known ones must have their JSON type ("3" is not a number, 1 not a bool).
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class SourceFile(_Inbound):
    name: str = Field(min_length=1, max_length=255)
    content: str
    encoding: Literal["utf8", "base64"] = "utf8"

    def data(self) -> bytes:
        """The file's bytes; called when the file is staged."""
        if self.encoding == "utf8":
            return self.content.encode()
        try:
            return base64.b64decode(self.content, validate=True)
        except binascii.Error as exc:
            raise BadMessage(
                f"file {clip(self.name)!r} is not valid base64", field="files"
            ) from exc


class LimitRequest(_Inbound):
    """Limits asked for by a client; each may only lower the server's maximum."""

    wall_ms: int | None = Field(None, ge=MIN_WALL_MS)
    idle_ms: int | None = Field(None, ge=MIN_IDLE_MS)
    cpu_ms: int | None = Field(None, ge=MIN_CPU_MS)
    memory_mb: int | None = Field(None, ge=MIN_MEMORY_MB)
    cpus: float | None = Field(None, ge=MIN_CPUS)
    pids: int | None = Field(None, ge=MIN_PIDS)
    output_bytes: int | None = Field(None, ge=MIN_OUTPUT_BYTES)


class TtySize(_Inbound):
    cols: int = Field(80, ge=1, le=500)
    rows: int = Field(24, ge=1, le=200)


class RunRequest(_Inbound):
    """What to run: shared by the WebSocket `run` and the REST `execute`."""

    language: str = Field(min_length=1, max_length=64)
    version: str | None = None
    code: str | None = None
    files: list[SourceFile] | None = Field(None, min_length=1, max_length=MAX_FILES)
    args: list[str] = Field(default_factory=list)
    stdin: str | None = None
    limits: LimitRequest | None = None
    token: str | None = None
    id: str | int | None = None
    #: A network policy of the server (`hello.network`); none: no network.
    network: str | None = Field(None, min_length=1, max_length=64)

    @field_validator("files")
    @classmethod
    def _unique_names(cls, files: list[SourceFile] | None) -> list[SourceFile] | None:
        if files is not None and len({f.name for f in files}) != len(files):
            raise ValueError("file names must be unique")
        return files


class PrepareMessage(RunRequest):
    """Compile these files now, so that their `run` skips the compile (new in v1.3).

    A run's own fields: what the compile depends on (language, files, limits)
    is the run's. Answered with `prepared`; nothing is run, nothing else is sent.
    """

    type: Literal["prepare"]


def _no_terminal(value: Any) -> Any:
    """`tty: false` asks for no terminal; `null` is no size either way, so it is refused."""
    if value is None:
        raise ValueError("tty is {cols, rows} or false")
    return None if value is False else value


class RunMessage(RunRequest):
    type: Literal["run"]
    #: The terminal's size; `false` on the wire (None here) for none: pipes,
    #: stdout and stderr kept apart (each binary frame then starts with its
    #: `OutputStream` byte).
    tty: Annotated[TtySize | None, BeforeValidator(_no_terminal)] = Field(default_factory=TtySize)
    output: Literal["binary", "text"] = "binary"
    flow_control: bool = False
    #: Record the run (asciicast v2); unset: recorded when the connection shares a room.
    record: bool | None = None


class StdinMessage(_Inbound):
    type: Literal["stdin"]
    data: str


class EofMessage(_Inbound):
    type: Literal["eof"]


class ResizeMessage(TtySize):
    type: Literal["resize"]
    cols: int = Field(ge=1, le=500)
    rows: int = Field(ge=1, le=200)


class SignalMessage(_Inbound):
    type: Literal["signal"]
    signal: Signal


class KillMessage(_Inbound):
    type: Literal["kill"]


class AckMessage(_Inbound):
    type: Literal["ack"]
    bytes: int = Field(ge=0)


class PingMessage(_Inbound):
    type: Literal["ping"]


#: A room's public id or key as the server makes them (URL-safe base64 of 16+ bytes).
_ROOM_TOKEN = Field(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class ShareMessage(_Inbound):
    """Open a room for this connection, or take one back with its `key`."""

    type: Literal["share"]
    room: Annotated[str, _ROOM_TOKEN] | None = None
    key: Annotated[str, _ROOM_TOKEN] | None = None


class CodeMessage(_Inbound):
    """The presenter's editor content, for the room's viewers."""

    type: Literal["code"]
    language: str = Field(min_length=1, max_length=64)
    code: str | None = None
    files: list[SourceFile] | None = Field(None, min_length=1, max_length=MAX_FILES)


class UnshareMessage(_Inbound):
    type: Literal["unshare"]


class WatchMessage(_Inbound):
    type: Literal["watch"]
    room: str = Field(min_length=1, max_length=64)


class UnwatchMessage(_Inbound):
    type: Literal["unwatch"]


ClientMessage = Annotated[
    RunMessage | StdinMessage | EofMessage | ResizeMessage | SignalMessage
    | KillMessage | AckMessage | PingMessage
    | ShareMessage | CodeMessage | UnshareMessage | WatchMessage | UnwatchMessage
    | PrepareMessage,
    Field(discriminator="type"),
]  # fmt: skip
_client_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs in order, a repeated key kept."""


def _first_repeated_key(value: Any, path: tuple[str, ...] = ()) -> str | None:
    """The dotted path of the first key that an object of `value` repeats."""
    items: list[tuple[str, Any]]
    if isinstance(value, _Pairs):
        seen: set[str] = set()
        for key, _ in value:
            if key in seen:
                return ".".join((*path, key))
            seen.add(key)
        items = value
    elif isinstance(value, list):
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        return None
    for key, item in items:
        if (found := _first_repeated_key(item, (*path, key))) is not None:
            return found
    return None


def refuse_repeated_keys(text: str | bytes, refusal: str) -> None:
    """Refuse a key given twice in any object, even one the server ignores.

    Pydantic keeps the last of repeated keys; a proxy in front may keep the
    first, and the two would then read one message two ways. Called on
    what pydantic accepted: the message is plain JSON.
    """
    try:
        document = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        raise BadMessage(f"{refusal}: not plain JSON") from None
    field = _first_repeated_key(document)
    if field is not None:
        raise BadMessage(f"{refusal}: duplicate key {field!r}", field=field)


def parse_client_message(text: str | bytes) -> ClientMessage:
    """Turn one text frame into a model, or raise `BadMessage` naming the field."""
    try:
        message = _client_adapter.validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"][1:]) or None
        raise BadMessage(f"invalid message: {first['msg']}", field=field) from None
    refuse_repeated_keys(text, "invalid message")
    return message


def validation_error_to_bad_message(exc: ValidationError) -> BadMessage:
    """A pydantic failure as a `BadMessage` naming the first bad field."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    return BadMessage(f"invalid request: {first['msg']}", field=field)


class ServerMessage(BaseModel):
    """Base of server→client messages."""

    model_config = ConfigDict(frozen=True)
    #: Fields left out of the JSON when they are None.
    omit_if_none: ClassVar[frozenset[str]] = frozenset()

    def to_json(self) -> str:
        return self._json

    # A message is immutable, so its JSON is written once however many
    # viewers of a room it goes to.
    @cached_property
    def _json(self) -> str:
        return TypeAdapter(dict[str, Any]).dump_json(self.to_data()).decode()

    def to_data(self) -> dict[str, Any]:
        """The message as JSON-ready data, as `to_json` writes it."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for name, value in self:
            if isinstance(value, ServerMessage):  # a message inside (`watching.run`), as sent
                data[name] = value.to_data()
            elif isinstance(value, list) and any(isinstance(v, ServerMessage) for v in value):
                data[name] = [v.to_data() for v in value]
        for name in self.omit_if_none:
            if data.get(name) is None:
                data.pop(name, None)
        return data


class LimitsInfo(BaseModel):
    defaults: dict[str, int | float]
    maxima: dict[str, int | float]


class Hello(ServerMessage):
    type: Literal["hello"] = "hello"
    server: str
    version: str
    protocol: int = PROTOCOL_VERSION
    languages: list[str]
    limits: LimitsInfo
    #: The network policies this client may name in `run.network`.
    network: list[str] = Field(default_factory=list)


class Queued(ServerMessage):
    type: Literal["queued"] = "queued"
    position: int


class Started(ServerMessage):
    type: Literal["started"] = "started"
    run_id: str
    language: str
    version: str
    limits: dict[str, int | float]
    id: str | int | None = None
    omit_if_none = frozenset({"id"})


class Stage(ServerMessage):
    type: Literal["stage"] = "stage"
    stage: Literal["compile", "run"]


class Prepared(ServerMessage):
    """The answer to `prepare`: whether a `run` of those files will skip its compile.

    `ready`: compiled (or already kept); `compile_error`: the compiler refused
    them (a run shows its words); `failed`: the compile did not finish
    (`message` says why); `skipped`: nothing kept (`message` says why: not a
    compiled language, no cache, the server busy, the program too big to keep).
    """

    type: Literal["prepared"] = "prepared"
    language: str
    outcome: Literal["ready", "compile_error", "failed", "skipped"]
    message: str | None = None
    id: str | int | None = None
    omit_if_none = frozenset({"message", "id"})


class OutputStream(IntEnum):
    """Without a TTY, the first byte of each output frame: where the rest came from."""

    STDOUT = 1
    STDERR = 2
    COMPILE = 3  # the compiler's stdout and stderr, merged


class Output(ServerMessage):
    type: Literal["output"] = "output"
    data: str
    #: Without a TTY, which stream the text came from.
    stream: Literal["stdout", "stderr", "compile"] | None = None
    omit_if_none = frozenset({"stream"})


class Exit(ServerMessage):
    type: Literal["exit"] = "exit"
    run_id: str
    stage: Literal["compile", "run"]
    status: Status
    exit_code: int | None
    signal: str | None
    wall_ms: int
    cpu_ms: int | None = None
    memory_peak_bytes: int | None = None
    output_bytes: int
    truncated: bool
    #: Which limit ended a `timeout`/`idle_timeout` run (absent otherwise; new in v1.2).
    limit: Limit | None = None
    message: str | None = None
    id: str | int | None = None
    #: The run's recording, `/api/v1/recordings/<id>.cast`, when it was recorded.
    recording: str | None = None
    omit_if_none = frozenset({"cpu_ms", "memory_peak_bytes", "limit", "message", "id", "recording"})


class ErrorMessage(ServerMessage):
    type: Literal["error"] = "error"
    code: str
    message: str
    field: str | None = None
    #: The refused message's `id`, when it had one (new in v1.3).
    id: str | int | None = None
    omit_if_none = frozenset({"field", "id"})


def error_message(exc: CeError, message_id: str | int | None = None) -> ErrorMessage:
    """The `error` refusing a message (`message_id`: that message's `id`)."""
    return ErrorMessage(code=exc.code, message=exc.message, field=exc.field, id=message_id)


#: The longest `id` echoed from a message that could not be read.
_MAX_LOOSE_ID = 256


def message_id(text: str | bytes) -> str | int | None:
    """The `id` of a client message that failed validation, if it is JSON with a usable one."""
    try:
        value = json.loads(text).get("id")
    except (ValueError, AttributeError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return value if len(str(value)) <= _MAX_LOOSE_ID else None


class Pong(ServerMessage):
    type: Literal["pong"] = "pong"


# -- live rooms (contract section 3) --


class Shared(ServerMessage):
    """To the presenter: its room is open (or taken back)."""

    type: Literal["shared"] = "shared"
    room: str
    key: str
    watch_url: str
    #: When the room closes however busy (ISO 8601, UTC).
    expires_at: str


class Viewers(ServerMessage):
    """To the presenter and the viewers: how many watch now."""

    type: Literal["viewers"] = "viewers"
    count: int


class FileView(BaseModel):
    name: str
    content: str
    encoding: Literal["utf8", "base64"] = "utf8"


class RoomCode(ServerMessage):
    """To the viewers: the presenter's editor content."""

    type: Literal["code"] = "code"
    language: str
    code: str | None = None
    files: list[FileView] | None = None
    omit_if_none = frozenset({"code", "files"})


class TerminalSize(ServerMessage):
    """To the viewers: the presenter's terminal size."""

    type: Literal["resize"] = "resize"
    cols: int
    rows: int


class PresenterState(ServerMessage):
    """To the viewers: the presenter dropped (the room waits for it) or came back."""

    type: Literal["presenter"] = "presenter"
    online: bool


class Watching(ServerMessage):
    """To a viewer: the room as it is now; a resync sends it again, then the replay."""

    type: Literal["watching"] = "watching"
    room: str
    language: str | None
    code: str | None = None
    files: list[FileView] | None = None
    viewers: int
    #: The live run's `started`, or None between runs.
    run: Started | None
    cols: int
    rows: int
    presenter: bool
    omit_if_none = frozenset({"code", "files"})


class RoomClosed(ServerMessage):
    """To the viewers: the room is over (`unshared`, `presenter_left`, `expired`, `server_shutdown`)."""

    type: Literal["room_closed"] = "room_closed"
    reason: str


# -- REST bodies (contract §2); the OpenAPI document is generated from these --


class ExecuteRequest(RunRequest):
    """`POST /api/v1/execute`: a `run` without a terminal; `stdin` is the whole input."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"language": "python", "code": "print('hello')"}]}
    )


def parse_execute_request(body: bytes) -> ExecuteRequest:
    """Turn an `execute` body into a model, or raise `BadMessage` naming the field."""
    try:
        request = ExecuteRequest.model_validate_json(body)
    except ValidationError as exc:
        raise validation_error_to_bad_message(exc) from None
    refuse_repeated_keys(body, "invalid request")
    return request


class CompileResult(BaseModel):
    """The compile stage of a compiled language: `exited` with 0 when it succeeded."""

    status: Status
    exit_code: int | None
    output: str


class ExecuteResponse(ServerMessage):
    """The result of `POST /api/v1/execute` (fields as in `exit`, plus the output)."""

    run_id: str
    language: str
    version: str
    status: Status
    exit_code: int | None
    signal: str | None
    stdout: str
    stderr: str
    #: stdout and stderr interleaved in arrival order.
    output: str
    wall_ms: int
    cpu_ms: int | None = None
    memory_peak_bytes: int | None = None
    output_bytes: int
    truncated: bool
    #: As `exit.limit`: which limit ended a `timeout`/`idle_timeout` run.
    limit: Limit | None = None
    compile: CompileResult | None = None
    message: str | None = None
    id: str | int | None = None
    omit_if_none = frozenset({"cpu_ms", "memory_peak_bytes", "limit", "compile", "message", "id"})


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(ServerMessage):
    """Every HTTP refusal (REST and the WebSocket's upgrade), with the WebSocket's error codes."""

    error: ErrorDetail

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class LanguageInfo(BaseModel):
    """One entry of `GET /api/v1/languages`."""

    name: str
    version: str
    aliases: list[str]
    compiled: bool
    entry_file: str


class Health(ServerMessage):
    """`GET /healthz`: the process is alive."""

    status: Literal["ok"] = "ok"


class EngineReadiness(ServerMessage):
    """One container engine in `/readyz` and the admin API."""

    name: str
    #: `ready` takes runs; `draining` takes none and keeps its live ones;
    #: `down` does not answer (its runs ended `error`; it rejoins by itself).
    condition: Literal["ready", "draining", "down"]
    reason: str | None = None
    runs: int
    capacity: int
    pool_idle: int | None = None
    omit_if_none = frozenset({"reason", "pool_idle"})


class EngineList(ServerMessage):
    """`GET /admin/engines` and the answer of a drain or a resume."""

    engines: list[EngineReadiness]


class KilledRun(ServerMessage):
    """`POST /admin/runs/{run_id}/kill`: the run was told to end (its `exit` says `killed`)."""

    run_id: str
    #: The replica that holds it (`CE_ADVERTISE_URL`), which may not be the one asked.
    replica: str


class Readiness(ServerMessage):
    """`GET /readyz`: whether a run would start now, and why not."""

    ready: bool
    reason: str | None = None
    active_runs: int
    queued_runs: int
    max_runs: int
    pool_idle: int | None = None
    pool_hits: int | None = None
    pool_misses: int | None = None
    #: Each engine runs go to, in the configured order.
    engines: list[EngineReadiness] = Field(default_factory=list)
    omit_if_none = frozenset({"reason", "pool_idle", "pool_hits", "pool_misses"})
