"""The one error tree of ce_ws; each refusal carries its wire `code`.

    CeError                      code: internal
    ├── BadMessage               code: bad_message
    │   └── BodyTimeout          (a REST body that did not arrive in time: HTTP 408)
    ├── UnknownLanguage          code: unknown_language
    ├── CodeTooLarge             code: code_too_large
    │   └── BodyTooLarge         (a REST body over the size cap: HTTP 413)
    ├── LimitExceeded            code: limit_exceeded
    ├── AlreadyRunning           code: already_running
    ├── NotRunning               code: not_running
    ├── Unauthorized             code: unauthorized
    ├── HostNotAllowed           code: host_not_allowed (HTTP 403)
    ├── OriginNotAllowed         code: origin_not_allowed (HTTP 403)
    ├── UnsupportedMediaType     code: unsupported_media_type (HTTP 415)
    ├── ReadOnly                 code: read_only (a watching connection)
    ├── UnknownRoom              code: unknown_room
    ├── UnknownEngine            code: unknown_engine (HTTP 404, the admin API)
    ├── UnknownRun               code: unknown_run (HTTP 404, the admin API)
    ├── RateLimited              code: rate_limited
    ├── Busy                     code: busy
    └── SandboxError             code: internal (the engine failed; raised
        │                        `from` the aiodocker error)
        └── SandboxNotFound      (what was asked for does not exist: gone is fine)

Handlers translate a `CeError` into an `error` message (WebSocket) or a 4xx/5xx
body (REST); anything else is a bug and becomes `internal`.

A message goes to the client and to the log: what it quotes of the client's
input is clipped (`clip`) where it is quoted, and the whole message is
bounded whatever it quotes, so a refusal never echoes a flood.
"""

from __future__ import annotations

from typing import ClassVar

#: The most of a client's value a message quotes.
ECHO_CHARS = 64
#: The longest message of any error (the server's own words are far shorter).
MESSAGE_CHARS = 512


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[:limit] + "…"


class CeError(Exception):
    """Root of every error the server reports to a client."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        message = clip(message, MESSAGE_CHARS)  # e.g. pydantic's, which may quote the input
        super().__init__(message)
        self.message = message
        self.field = field


class BadMessage(CeError):
    code = "bad_message"


class BodyTimeout(BadMessage):
    """A REST request body that did not arrive within its deadline."""


class UnknownLanguage(CeError):
    code = "unknown_language"


class CodeTooLarge(CeError):
    code = "code_too_large"


class BodyTooLarge(CodeTooLarge):
    """A REST request body over the size cap."""


class LimitExceeded(CeError):
    code = "limit_exceeded"


class AlreadyRunning(CeError):
    code = "already_running"


class NotRunning(CeError):
    code = "not_running"


class Unauthorized(CeError):
    code = "unauthorized"


class HostNotAllowed(CeError):
    """The Host header names none of the server's names (DNS rebinding)."""

    code = "host_not_allowed"


class OriginNotAllowed(CeError):
    """A browser on a page of another origin."""

    code = "origin_not_allowed"


class UnsupportedMediaType(CeError):
    """A REST body not sent as `application/json` (what a page elsewhere can send blind)."""

    code = "unsupported_media_type"


class ReadOnly(CeError):
    """A watching connection asked to run, type or signal."""

    code = "read_only"


class UnknownRoom(CeError):
    """No open room has this id (or the key does not match)."""

    code = "unknown_room"


class UnknownEngine(CeError):
    """The admin API named an engine this server does not drive."""

    code = "unknown_engine"


class UnknownRun(CeError):
    """The admin API named a run no replica has live."""

    code = "unknown_run"


class RateLimited(CeError):
    code = "rate_limited"


class Busy(CeError):
    code = "busy"


class SandboxError(CeError):
    """The container engine failed or did not answer in time."""


class EngineUnreachable(SandboxError):
    """The container engine does not answer at all (stopped, restarting)."""


class SandboxNotFound(SandboxError):
    """The engine has no such container or image (already removed counts as done)."""


class SandboxStopped(SandboxError):
    """The container has stopped (the program ended): its exit is on its way."""
