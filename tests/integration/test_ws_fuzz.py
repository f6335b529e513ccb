"""Property-based fuzzing of the WebSocket protocol (protocol.md section 1), against a live server.

The real server runs as its own process (its log captured to a file) on the
real engine. hypothesis sends it random JSON of every type in every field of
every client message, random binary frames, valid messages in random order
on one socket and on two at once, fragmented frames (over a raw socket, since
no client library fragments on request) and oversized ones. Whatever it
sends, the server must:

- answer every refusal with an `error` whose code is one of the contract's
  (never `internal`: that is a bug the server logged);
- never close a socket with 1011; end every run it started with exactly one
  `exit`;
- never answer a 5xx, never write a traceback to its log, never die;
- and, once the fuzzing is over, still run a canary program.

The examples are bounded (`max_examples`) so the file runs in ~2 minutes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ce_ws.protocol import CloseCode
from tests.integration.server_process import ServerProcess, server_process

#: `error.code` values the contract lists (protocol.md section 1), less `internal`.
CONTRACT_CODES = frozenset(
    {
        "bad_message",
        "unknown_language",
        "code_too_large",
        "limit_exceeded",
        "already_running",
        "not_running",
        "unauthorized",
        "rate_limited",
        "busy",
    }
)
#: How the server may close a socket a fuzzer talks to: the contract's codes
#: but 1011, and RFC 6455's own for frames that break the framing (aiohttp's).
ALLOWED_CLOSES = frozenset(
    {
        CloseCode.NORMAL,
        CloseCode.GOING_AWAY,
        CloseCode.POLICY,
        CloseCode.TOO_BIG,
        CloseCode.TRY_AGAIN_LATER,
        1002,  # protocol error: a bad opcode, a broken fragment sequence
        1007,  # a text frame that is not UTF-8
    }
)
MAX_MESSAGE_BYTES = 16 * 1024
_LIMITS = json.dumps({"wall_ms": 3000, "idle_ms": 3000, "memory_mb": 64, "output_bytes": 65536})
FUZZ_SERVER_ENV = {
    "CE_DEFAULTS": _LIMITS,
    "CE_MAXIMA": _LIMITS,
    "CE_POOL__ENABLED": "false",
    "CE_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
    # Refusals are what is fuzzed: their per-socket budget would close most sockets early.
    "CE_CAPACITY__REFUSALS_PER_MINUTE": "100000",
    "CE_CAPACITY__RUNS_PER_MINUTE": "600",
}
_REPLY_TIMEOUT_S = 20.0
_EXIT_TIMEOUT_S = 30.0
_FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# -- the server --------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    """The server under fuzz and its log; afterwards: no traceback, and it still runs code."""
    with server_process(**FUZZ_SERVER_ENV) as server:
        yield server, server.log_path
        asyncio.run(_canary(server))
        assert server.process.poll() is None, "the server died"
        assert "Traceback" not in server.log(), f"a traceback:\n{server.log()[-4000:]}"
    # Leaving the context stopped it and checked its exit: clean, no traceback, no sweep.


def _alive(server: ServerProcess) -> None:
    assert server.process.poll() is None, f"the server died (exit {server.process.returncode})"


async def _canary(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as ws:
        replies = Replies(ws)
        await replies.next_of("hello")
        await ws.send_json({"type": "run", "language": "python", "code": 'print("canary")'})
        exit_message = await replies.next_of("exit", timeout_s=60)
        assert exit_message["status"] == "exited", exit_message
        assert b"canary" in replies.output, replies.output
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/readyz") as response:
        assert response.status == 200


# -- a client that checks every frame it is sent ----------------------------


class Replies:
    """Reads one socket; every text frame is checked against the contract as it arrives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.output = b""
        self.closed_with: int | None = None

    async def next_of(self, kind: str, *, timeout_s: float = _REPLY_TIMEOUT_S) -> dict[str, Any]:
        """Read until a message of type `kind` (checking every frame on the way)."""
        async with asyncio.timeout(timeout_s):
            while True:
                message = await self._next()
                if message is None:
                    raise AssertionError(f"closed ({self.closed_with}) before {kind}")
                if message["type"] == kind:
                    return message

    async def until_closed_or(self, *kinds: str) -> dict[str, Any] | None:
        """Like `next_of` (a message of any of `kinds`), but a close on the way is an answer too (None)."""
        async with asyncio.timeout(_REPLY_TIMEOUT_S):
            while (message := await self._next()) is not None:
                if message["type"] in kinds:
                    return message
        return None

    async def _next(self) -> dict[str, Any] | None:
        while True:
            frame = await self.ws.receive()
            if frame.type is aiohttp.WSMsgType.BINARY:
                self.output += frame.data
                continue
            if frame.type is not aiohttp.WSMsgType.TEXT:
                self.closed_with = self.ws.close_code
                assert self.closed_with in ALLOWED_CLOSES, f"closed with {self.closed_with}"
                return None
            message: dict[str, Any] = json.loads(frame.data)
            check_message(message)
            self.messages.append(message)
            return message

    def count(self, kind: str) -> int:
        return sum(message["type"] == kind for message in self.messages)


def check_message(message: dict[str, Any]) -> None:
    """A frame from the server is within the contract."""
    assert isinstance(message.get("type"), str), message
    if message["type"] == "error":
        assert message["code"] in CONTRACT_CODES, message
        assert isinstance(message["message"], str) and message["message"], message
    if message["type"] == "exit":
        assert message["status"] != "error", message  # the engine did not fail


async def _barrier(replies: Replies) -> bool:
    """A `ping` after what was sent: its `pong` means all before it was handled.

    False if the server closed the socket instead (checked for its code).
    """
    if replies.ws.closed:
        return False
    with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
        await replies.ws.send_json({"type": "ping"})
    return await replies.until_closed_or("pong") is not None


async def _answer_to_prepare(replies: Replies, frames: list[Any]) -> None:
    """A `prepare` is answered by a task of its own, so maybe after the barrier's `pong`."""
    sent = any(isinstance(frame, dict) and frame.get("type") == "prepare" for frame in frames)
    if sent and not any(m["type"] in ("prepared", "error") for m in replies.messages):
        await replies.until_closed_or("prepared", "error")


async def _settle_runs(replies: Replies) -> None:
    """Stop whatever run was started; every `started` run gets exactly one `exit`.

    A run still starting when the socket closes is ended by the server (the
    client left) and owes this client nothing: only started ones are checked.
    """
    if replies.ws.closed:
        return
    await replies.ws.send_json({"type": "kill"})
    async with asyncio.timeout(_EXIT_TIMEOUT_S):
        while not _every_started_run_exited(replies):
            if not await _barrier(replies):
                return
            await asyncio.sleep(0.05)
    exits = [m["run_id"] for m in replies.messages if m["type"] == "exit"]
    assert len(exits) == len(set(exits)), f"a run ended twice: {replies.messages}"


def _every_started_run_exited(replies: Replies) -> bool:
    started = {m["run_id"] for m in replies.messages if m["type"] == "started"}
    exited = {m["run_id"] for m in replies.messages if m["type"] == "exit"}
    return started <= exited


# -- strategies --------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
#: Every field of every client message (protocol.md section 1), and the nested ones.
FIELDS: dict[str, list[str]] = {
    "run": [
        "language", "version", "code", "files", "args", "stdin", "limits", "tty",
        "output", "flow_control", "token", "id",
    ],
    "stdin": ["data"],
    "eof": [],
    "resize": ["cols", "rows"],
    "signal": ["signal"],
    "kill": [],
    "ack": ["bytes"],
    "ping": [],
    "prepare": ["language", "version", "code", "files", "args", "stdin", "limits", "token", "id"],
}  # fmt: skip
LIMIT_FIELDS = ["wall_ms", "idle_ms", "memory_mb", "cpus", "pids", "output_bytes"]
SIGNALS = ["SIGINT", "SIGTERM", "SIGKILL", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGCONT",
           "SIGSTOP", "SIGTSTP"]  # fmt: skip
#: Plausible values beside random ones, so some messages get past the first check.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "language": st.sampled_from(["python", "bash", "py", "cobol", ""]),
    "code": st.sampled_from(["print(1)", "", "\x00", "x" * 70_000]),
    "signal": st.sampled_from(SIGNALS),
    "cols": st.integers(-5, 600),
    "rows": st.integers(-5, 300),
    "bytes": st.integers(-5, 2**63),
    "output": st.sampled_from(["binary", "text", "html"]),
    "limits": st.dictionaries(
        st.sampled_from(LIMIT_FIELDS), st.integers(-1, 10**12) | json_values, max_size=6
    ),
    "tty": st.fixed_dictionaries({"cols": json_values, "rows": json_values}),
    "files": st.lists(
        st.fixed_dictionaries(
            {"name": st.text(max_size=300) | json_values, "content": json_values},
            optional={"encoding": st.sampled_from(["utf8", "base64", "rot13"]) | json_values},
        ),
        max_size=3,
    ),
}


@st.composite
def fuzzed_messages(draw: st.DrawFn) -> dict[str, Any]:
    """One client message: a known (or unknown) type, each field random or plausible."""
    kind = draw(st.sampled_from([*FIELDS, "teleport", "RUN"]) | json_values)  # two unknown types
    message: dict[str, Any] = {"type": kind}
    for name in FIELDS.get(kind, []) if isinstance(kind, str) else []:
        if draw(st.booleans()):
            plausible = PLAUSIBLE.get(name)
            message[name] = draw(json_values if plausible is None else plausible | json_values)
    message.update(draw(st.dictionaries(st.text(max_size=10), json_values, max_size=2)))
    return message


def valid_actions() -> st.SearchStrategy[dict[str, Any] | bytes]:
    """A valid client message (or keystrokes) of any type."""
    run = st.fixed_dictionaries(
        {
            "type": st.just("run"),
            "language": st.sampled_from(["python", "bash"]),
            "code": st.sampled_from(
                ["print(input())", "import time\ntime.sleep(5)", "echo hi", "cat"]
            ),
        },
        optional={"tty": st.fixed_dictionaries({"cols": st.integers(1, 500)})},
    )
    return st.one_of(
        run,
        st.fixed_dictionaries({"type": st.just("stdin"), "data": st.text(max_size=20)}),
        st.just({"type": "eof"}),
        st.fixed_dictionaries(
            {"type": st.just("resize"), "cols": st.integers(1, 500), "rows": st.integers(1, 200)}
        ),
        st.fixed_dictionaries({"type": st.just("signal"), "signal": st.sampled_from(SIGNALS)}),
        st.just({"type": "kill"}),
        st.fixed_dictionaries({"type": st.just("ack"), "bytes": st.integers(0, 2**40)}),
        st.just({"type": "ping"}),
        st.binary(min_size=1, max_size=64),
    )


# -- the properties ----------------------------------------------------------


async def _open(http: aiohttp.ClientSession, server: ServerProcess) -> Replies:
    ws = await http.ws_connect(server.ws_url, max_msg_size=0, autoclose=False)
    replies = Replies(ws)
    await replies.next_of("hello")
    return replies


async def _send(replies: Replies, frame: dict[str, Any] | bytes | str) -> None:
    if isinstance(frame, bytes):
        await replies.ws.send_bytes(frame)
    elif isinstance(frame, str):
        await replies.ws.send_str(frame)
    else:
        await replies.ws.send_str(json.dumps(frame))


async def _one_socket(server: ServerProcess, frames: list[Any], gaps: list[float]) -> Replies:
    async with aiohttp.ClientSession() as http:
        replies = await _open(http, server)
        try:
            for frame, gap in zip(frames, gaps, strict=False):
                if replies.ws.closed:
                    break
                await _send(replies, frame)
                if gap:
                    await asyncio.sleep(gap)
            if await _barrier(replies):
                await _answer_to_prepare(replies, frames)
                await _settle_runs(replies)
        finally:
            await replies.ws.close()
    return replies


@given(message=fuzzed_messages())
@example(message={"type": "prepare", "language": "python"})  # answered after the `pong`
@settings(_FUZZ, max_examples=250)
def test_random_json_in_every_field_of_every_message(
    fuzzed: tuple[ServerProcess, Path], message: dict[str, Any]
) -> None:
    server, _ = fuzzed
    replies = asyncio.run(_one_socket(server, [message], [0.0]))
    if message["type"] not in ("run", "ping") and not replies.closed_with:
        answers = [m for m in replies.messages if m["type"] not in {"hello", "pong"}]
        # A well-formed `prepare` is answered `prepared` (`skipped`: none is compiled here).
        answered = {"error", "prepared"} if message["type"] == "prepare" else {"error"}
        assert answers and answers[0]["type"] in answered, (message, replies.messages)
    _alive(server)


@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
@settings(_FUZZ, max_examples=60)
def test_text_frames_that_are_not_json_objects(
    fuzzed: tuple[ServerProcess, Path], text: str
) -> None:
    server, _ = fuzzed
    replies = asyncio.run(_one_socket(server, [text], [0.0]))
    assert replies.closed_with is None or replies.closed_with in ALLOWED_CLOSES
    _alive(server)


@given(frames=st.lists(st.binary(max_size=2048), min_size=1, max_size=5))
@settings(_FUZZ, max_examples=40)
def test_random_binary_frames_without_a_run(
    fuzzed: tuple[ServerProcess, Path], frames: list[bytes]
) -> None:
    server, _ = fuzzed
    replies = asyncio.run(_one_socket(server, frames, [0.0] * len(frames)))
    refused = [m["code"] for m in replies.messages if m["type"] == "error"]
    assert refused == ["not_running"] * len(frames), replies.messages
    _alive(server)


@given(
    actions=st.lists(valid_actions(), min_size=1, max_size=8),
    gaps=st.lists(st.sampled_from([0.0, 0.0, 0.01, 0.2]), min_size=8, max_size=8),
)
@settings(_FUZZ, max_examples=30)
def test_valid_messages_in_random_order(
    fuzzed: tuple[ServerProcess, Path], actions: list[Any], gaps: list[float]
) -> None:
    server, _ = fuzzed
    replies = asyncio.run(_one_socket(server, actions, gaps))
    assert replies.closed_with is None, replies.messages
    _alive(server)


@given(
    first=st.lists(valid_actions(), min_size=1, max_size=6),
    second=st.lists(valid_actions() | fuzzed_messages(), min_size=1, max_size=6),
    gaps=st.lists(st.sampled_from([0.0, 0.01, 0.1]), min_size=6, max_size=6),
)
@settings(_FUZZ, max_examples=12)
def test_two_sockets_interleaved(
    fuzzed: tuple[ServerProcess, Path], first: list[Any], second: list[Any], gaps: list[float]
) -> None:
    server, _ = fuzzed

    async def both() -> None:
        await asyncio.gather(_one_socket(server, first, gaps), _one_socket(server, second, gaps))

    asyncio.run(both())
    _alive(server)


# -- frames no client library sends: a raw socket ----------------------------

TEXT, BINARY, CONTINUATION, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


class RawSocket:
    """A WebSocket spoken by hand: any opcode, any fragmentation, any size."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, server: ServerProcess) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /api/v1/ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        assert status == 101, head
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        mask = os.urandom(4)
        length = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if length < 126:
            head += bytes([0x80 | length])
        elif length < 2**16:
            head += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def receive(self) -> tuple[int, bytes] | None:
        """The next frame from the server (opcode, payload), or None at end of stream."""
        try:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, OSError):
            # The server closed while frames were still being written: the broken
            # pipe ends the stream, the close frame unread.
            return None

    async def outcome(self) -> tuple[list[dict[str, Any]], int | None]:
        """Messages until a `pong` or the close: (messages, close code; None if none came)."""
        messages: list[dict[str, Any]] = []
        async with asyncio.timeout(_REPLY_TIMEOUT_S):
            while (frame := await self.receive()) is not None:
                opcode, payload = frame
                if opcode == TEXT:
                    message = json.loads(payload)
                    check_message(message)
                    messages.append(message)
                    if message["type"] == "pong":
                        return messages, None
                elif opcode == CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    assert code in ALLOWED_CLOSES, code
                    return messages, code
        return messages, None

    def close(self) -> None:
        """Drop the connection (unsent bytes too: the server may have closed already)."""
        self.writer.transport.abort()


def _split(payload: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(payload) + 1) for cut in cuts})
    edges = [0, *points, len(payload)]
    return [payload[a:b] for a, b in itertools.pairwise(edges)]


async def _raw(server: ServerProcess, frames: list[tuple[int, bytes, bool]]) -> Any:
    raw = await RawSocket.connect(server)
    try:
        hello = await raw.receive()
        assert hello is not None and json.loads(hello[1])["type"] == "hello"
        for opcode, payload, fin in frames:
            raw.send(opcode, payload, fin=fin)
        raw.send(TEXT, b'{"type": "ping"}')
        with contextlib.suppress(ConnectionError):
            await raw.writer.drain()
        return await raw.outcome()
    finally:
        raw.close()


@given(
    message=st.sampled_from([{"type": "ping"}, {"type": "eof"}, {"type": "nope"}])
    | fuzzed_messages().filter(lambda m: m.get("type") != "run"),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    control_between=st.booleans(),
)
@settings(_FUZZ, max_examples=60)
def test_fragmented_frames_are_one_message(
    fuzzed: tuple[ServerProcess, Path],
    message: dict[str, Any],
    cuts: list[int],
    control_between: bool,
) -> None:
    server, _ = fuzzed
    pieces = _split(json.dumps(message).encode(), cuts)
    frames: list[tuple[int, bytes, bool]] = []
    for index, piece in enumerate(pieces):
        frames.append((TEXT if index == 0 else CONTINUATION, piece, index == len(pieces) - 1))
        if control_between and index < len(pieces) - 1:
            frames.append((PING, b"between", True))  # allowed amid fragments (RFC 6455 5.4)
    messages, closed = asyncio.run(_raw(server, frames))
    assert closed is None, (pieces, messages)
    answers = [m for m in messages if m["type"] != "pong"]
    if message["type"] != "ping":
        assert len(answers) == 1 and answers[0]["type"] == "error", (message, messages)
    _alive(server)


@given(
    frames=st.lists(
        st.tuples(st.integers(0, 15), st.binary(max_size=64), st.booleans()),
        min_size=1,
        max_size=4,
    )
)
@settings(_FUZZ, max_examples=60)
def test_broken_framing(
    fuzzed: tuple[ServerProcess, Path], frames: list[tuple[int, bytes, bool]]
) -> None:
    """Reserved opcodes, stray continuations, unfinished fragments, odd control frames."""
    server, _ = fuzzed
    asyncio.run(_raw(server, frames))  # any allowed close or none; the checks are inside
    _alive(server)


@given(
    extra=st.integers(1, 4 * MAX_MESSAGE_BYTES),
    opcode=st.sampled_from([TEXT, BINARY]),
    fragments=st.integers(1, 4),
)
@settings(_FUZZ, max_examples=15)
def test_oversized_frames_close_1009(
    fuzzed: tuple[ServerProcess, Path], extra: int, opcode: int, fragments: int
) -> None:
    server, _ = fuzzed
    payload = json.dumps({"type": "stdin", "data": "x" * (MAX_MESSAGE_BYTES + extra)}).encode()
    size = -(-len(payload) // fragments)
    pieces = [payload[i : i + size] for i in range(0, len(payload), size)]
    frames = [
        (opcode if index == 0 else CONTINUATION, piece, index == len(pieces) - 1)
        for index, piece in enumerate(pieces)
    ]
    messages, closed = asyncio.run(_raw(server, frames))
    # 1009, or the connection dropped before its close frame could be read (the
    # rest of the message was still being written): never answered, never 1011.
    assert closed in {CloseCode.TOO_BIG, None}
    assert not [m for m in messages if m["type"] != "hello"], messages
    _alive(server)
