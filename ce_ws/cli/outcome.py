"""How a run's end becomes `ce`'s exit status, as shells and timeout(1) report them.

Pure logic: the program's own code, 128+N for a signal, 124 for a time
limit, 137 for out of memory or a kill, 1 for a compile error, 69
(EX_UNAVAILABLE) when the server cannot be reached or refuses the run.
`why` is the one line `ce` prints on stderr whenever the program did not
simply exit.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from ce_ws.protocol import ErrorMessage, Exit, Status

EX_COMPILE_ERROR = 1
EX_USAGE = 2
EX_UNAVAILABLE = 69  # sysexits.h: the service is unavailable
EX_TIMEOUT = 124  # timeout(1)
EX_KILLED = 128 + signal.SIGKILL  # 137: what a shell shows for a SIGKILLed command
# A shell shows 128+SIGXFSZ for a program stopped by its file-size limit; the
# output cap is that limit's counterpart here.
EX_OUTPUT_LIMIT = 128 + signal.SIGXFSZ
EX_BROKEN_PIPE = 128 + signal.SIGPIPE

_REFUSAL_HINTS = {
    "unknown_language": "see `ce languages`, or pass --language",
    "unauthorized": "pass --token or set CE_TOKEN",
    "busy": "the server is full; try again in a moment",
    "rate_limited": "slow down and try again in a moment",
    "code_too_large": "the file is larger than the server accepts",
    "limit_exceeded": "ask for less, within the server's maxima",
}


@dataclass(frozen=True, slots=True)
class Ending:
    """`ce`'s exit status, and the line on stderr saying why (None: it simply exited)."""

    code: int
    why: str | None = None


def signal_exit_code(name: str) -> int:
    """128 + the signal's number, as a shell reports a command a signal ended."""
    try:
        return 128 + signal.Signals[name].value
    except KeyError:
        return EX_KILLED


def run_ending(message: Exit) -> Ending:
    """The exit status for a run's `exit` message."""
    detail = f": {message.message}" if message.message else ""
    match message.status:
        case Status.EXITED if message.signal:
            code = message.exit_code if message.exit_code else signal_exit_code(message.signal)
            return Ending(code, f"the program was ended by {message.signal}{detail}")
        case Status.EXITED:
            return Ending(message.exit_code or 0, message.message)
        case Status.COMPILE_ERROR:
            return Ending(
                EX_COMPILE_ERROR, "compilation failed (the compiler's messages are above)"
            )
        case Status.TIMEOUT:
            return Ending(EX_TIMEOUT, f"time limit reached after {message.wall_ms / 1000:g} s")
        case Status.IDLE_TIMEOUT:
            return Ending(EX_TIMEOUT, "stopped: no input and no output for too long (idle limit)")
        case Status.OOM:
            return Ending(EX_KILLED, f"out of memory: the program reached its memory limit{detail}")
        case Status.OUTPUT_LIMIT:
            return Ending(
                EX_OUTPUT_LIMIT, f"output limit reached: {message.output_bytes} bytes were shown"
            )
        case Status.KILLED:
            return Ending(EX_KILLED, f"the run was killed{detail}")
        case Status.ERROR:
            return Ending(EX_UNAVAILABLE, f"the server could not run the program{detail}")
    raise AssertionError(f"unhandled status {message.status}")  # pragma: no cover


def refusal_ending(error: ErrorMessage) -> Ending:
    """The server refused the run (an `error` before `started`)."""
    hint = _REFUSAL_HINTS.get(error.code)
    suffix = f"; {hint}" if hint else ""
    return Ending(
        EX_UNAVAILABLE, f"the server refused the run ({error.code}): {error.message}{suffix}"
    )


def unreachable_ending(server: str, reason: str) -> Ending:
    """The server could not be reached, or the connection to it was lost."""
    return Ending(
        EX_UNAVAILABLE,
        f"cannot reach the server at {server} ({reason}); start it with "
        "`python -m ce_ws serve`, or pass --server / set CE_SERVER",
    )


def lost_ending(reason: str) -> Ending:
    """The connection dropped while the run was going: its end is unknown."""
    return Ending(EX_UNAVAILABLE, f"the connection to the server was lost ({reason})")
