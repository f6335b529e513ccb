"""One container's life: staged, created, attached, started, driven, removed.

`open_box` is the only way to get a `Box`; leaving its context removes the
container and then the staging folder, bounded in time, whatever happened.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from dataclasses import asdict
from typing import Any

from aiodocker.containers import DockerContainer
from aiodocker.stream import Stream

from ce_ws.errors import EngineUnreachable, SandboxError
from ce_ws.sandbox.base import BoxExit, BoxProfile, CompileExit, Usage
from ce_ws.sandbox.cgroup import read_usage
from ce_ws.sandbox.compile_cache import MAX_COMPILER_OUTPUT_BYTES
from ce_ws.sandbox.engine import OWNER_LABEL, PROFILE_LABEL, RUN_LABEL, Engine, engine_errors
from ce_ws.sandbox.spec import DETACH_KEYS, SANDBOX_USER, container_config, engine_limits
from ce_ws.sandbox.staging import StagingDir
from ce_ws.types import COMPILER, STDERR, STDOUT, OutputSink, StreamId

log = logging.getLogger(__name__)

#: Why a run ended when the engine stopped its container on its own.
STOPPED_BY_ENGINE = (
    "the container engine stopped your program (it is restarting or shutting down);"
    " run it again in a moment"
)
ATTACH_LOST = (
    "the connection to the program's container was lost (the container engine may"
    " have restarted); run it again in a moment"
)
READY_MARKER = b"\x1e[ce-ready]"
GO_MARKER = b"\x1e[ce-go]"
# The launcher's compile frames (docker/runtime/launch): a tag, then base64 or the exit code.
_COMPILER_OUTPUT = b"\x1e[ce-compiler"
_PROGRAM = b"\x1e[ce-program"
_COMPILED = b"\x1e[ce-compiled"
# A frame's line is 64 KiB of base64 and its end.
_MAX_FRAME = 70_000
# Only the launcher writes to stdout before "go"; a few KiB covers it with room to spare.
_MAX_PRELUDE = 4096
# The program's stderr that overtakes "go" (see `_read_through`) is kept up to this.
_MAX_EARLY_STDERR = 1 << 20
# The exit code of a Go program's fatal runtime error: gVisor's Sentry is one.
_GO_RUNTIME_FATAL = 2
# How long a compiler killed by a signal may wait for its container to be
# reported stopped too (gVisor's whole sandbox dies with its memory limit).
_BOX_DEATH_GRACE_S = 1.0
# SIGSTOP cannot be forwarded by the init process (it would stop the init
# itself), so it goes to the program's processes from inside: to every one
# (children, the compiler and the waiting launcher during compile). SIGCONT
# must reach each process SIGSTOP reached, and the init would forward it to
# the main program only: it goes the same way.
_SIGNALS_FROM_INSIDE = {"SIGSTOP": "-STOP", "SIGCONT": "-CONT"}
_SIGNAL_NUMBERS = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
    7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
    13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
}  # fmt: skip


def _after_line(prelude: bytes, marker: bytes) -> bytes | None:
    """What follows `marker`'s line once that whole line is read; None until then.

    A terminal may hand the marker over in one chunk and its line's end in
    the next: the rest of the line is the launcher's too, never output.
    """
    _, found, rest = prelude.partition(marker)
    if not found or b"\n" not in rest:
        return None
    return rest.split(b"\n", 1)[1]


def signal_of_exit_code(code: int) -> str | None:
    """The signal behind an init's 128+N exit code, if any."""
    return _SIGNAL_NUMBERS.get(code - 128) if code > 128 else None


def killed_at_memory_limit(
    signal: str | None, *, sent_kill: bool, usage: Usage, memory_limit_bytes: int
) -> bool:
    """Whether the kernel's OOM killer ended the box, though no `oom` event said so.

    Under load the engine's `oom` event can come after the exit. The cgroup
    then still tells: it counted an OOM kill, or a SIGKILL that this server
    never sent came with the memory peak at the limit.
    """
    if usage.oom_kills:
        return True
    if signal != "SIGKILL" or sent_kill or usage.memory_peak_bytes is None:
        return False
    return usage.memory_peak_bytes >= memory_limit_bytes


class Box:
    """A started container whose launcher waits for "go"."""

    def __init__(
        self, engine: Engine, box_id: str, staging: StagingDir, profile: BoxProfile
    ) -> None:
        self.box_id = box_id
        self.profile = profile
        self.created = time.monotonic()
        self._engine = engine
        self._staging = staging
        self._container: DockerContainer | None = None
        self._stream: Stream | None = None
        #: The launcher's stdout read past one marker, not yet searched for the next.
        self._prelude = b""
        #: Program output read while waiting for "go", in arrival order.
        self._pending: deque[tuple[StreamId, bytes]] = deque()
        self._last_usage = Usage(None, None)
        self._size: tuple[int, int] | None = None
        self._files: list[tuple[str, bytes]] = []
        #: (cached program, where it goes) for the launcher, on a compile cache hit.
        self._install: tuple[str, str] | None = None

    @property
    def id(self) -> str:
        """The engine's container id."""
        return self._live_container().id

    def _live_container(self) -> DockerContainer:
        if self._container is None:
            raise RuntimeError("the box has no container yet")
        return self._container

    def _live_stream(self) -> Stream:
        if self._stream is None:
            raise RuntimeError("the box is not attached")
        return self._stream

    async def _start(self, size: tuple[int, int]) -> None:
        engine = self._engine
        network = None
        if self.profile.network is not None:
            network = await engine.egress().attach(self.box_id, self.profile.network)
        cache = engine.compile_cache
        config = container_config(
            settings=engine.settings,
            limits=self.profile.limits,
            runtime=self.profile.runtime,
            labels={
                RUN_LABEL: self.box_id,
                OWNER_LABEL: engine.server_id,
                PROFILE_LABEL: json.dumps(asdict(self.profile)),
            },
            staging_path=str(self._staging.path),
            seccomp_profile=engine.seccomp_profile,
            tty=self.profile.tty,
            size=size,
            tmp_exec=self.profile.tmp_exec,
            launcher=self.profile.launcher,
            network=network,
            cache_folder=str(cache.folder) if cache is not None and self.profile.tmp_exec else None,
        )
        self._container = await engine.create_container(config, name=f"ce-{self.box_id}")
        self._stream = self._container.attach(
            stdin=True, stdout=True, stderr=True, detach_keys=DETACH_KEYS
        )
        # Attach before start: output written before the attach exists is lost.
        with engine_errors("attach and start"):
            async with engine.control_timeout():
                await self._stream.__aenter__()
                await self._container.start()
                if self.profile.tty:
                    await self._container.resize(h=size[1], w=size[0])
                    self._size = size
                self._prelude = await self._read_through(READY_MARKER, keep_stderr=False)

    async def stage(self, files: list[tuple[str, bytes]]) -> None:
        """Write the program's files; called once, before "go"."""
        self._files = files
        await asyncio.to_thread(self._staging.write_files, files)

    async def _read_through(self, marker: bytes, *, keep_stderr: bool) -> bytes:
        """Read the launcher's stdout through `marker`'s line; returns what follows it.

        Only the launcher writes to stdout before its marker, so nothing
        skipped there is the user's. Stderr is another pipe, which the engine
        reads apart: once "go" is written the program runs, and its first
        words on stderr can reach us before "go" does. They are the program's
        output (`keep_stderr`); before "ready" no program runs, so whatever
        is on stderr then is the launcher's, logged and dropped.
        """
        prelude, self._prelude = self._prelude, b""
        early_stderr = 0
        while (after := _after_line(prelude, marker)) is None:
            message = await self._live_stream().read_out()
            if message is None or len(prelude) > _MAX_PRELUDE or early_stderr > _MAX_EARLY_STDERR:
                raise SandboxError("the runtime image's launcher did not answer")
            if message.stream != STDERR:
                prelude += message.data
            elif keep_stderr:
                self._pending.append((STDERR, message.data))
                early_stderr += len(message.data)
            else:
                log.warning("box %s: the launcher wrote on stderr: %r", self.box_id, message.data)
        return after

    async def compile(
        self, argv: list[str], *, binary: str, timeout_s: float, sink: OutputSink
    ) -> CompileExit | None:
        """Have the launcher compile `binary`, or find it in the compile cache.

        None when the compiler timed out (waiting for another box's compile
        of the same files counts against the same time). A program compiled
        here is kept in the cache: no user code has run in this box yet, and
        the launcher sends the program's bytes itself.
        """
        cache = self._engine.compile_cache
        key = cache.key(argv, self._files) if cache is not None else ""
        try:
            async with asyncio.timeout(timeout_s):
                async with (
                    cache.one_compile(key, self.profile)
                    if cache is not None
                    else contextlib.nullcontext()
                ) as cached:
                    if cached is not None:
                        if cached.compiler_output:
                            await sink(cached.compiler_output, COMPILER)
                        self._install = (cached.path, binary)
                        return CompileExit(exit_code=0, oom_killed=False, kept=True)
                    ended = await self._compile_here(argv, binary, sink, key)
        except TimeoutError:
            return None
        if ended is not None:
            return ended
        box_exit = await self.wait_exit()
        return CompileExit(box_exit.exit_code, box_exit.oom_killed, box_stopped=True)

    async def _compile_here(
        self, argv: list[str], binary: str, sink: OutputSink, key: str
    ) -> CompileExit | None:
        """The launcher's compile, its program kept under `key`; None when the box stopped."""
        cache = self._engine.compile_cache
        keep = cache.max_program_bytes if cache is not None else 0
        await self.write(
            json.dumps({"compile": argv, "binary": binary, "keep": keep}).encode() + b"\n"
        )
        code, program, words = await self._relay_compile(sink, keep)
        if code is None or (code > 128 and await self._stops_soon()):
            return None
        kills = (await asyncio.to_thread(read_usage, self.id)).oom_kills
        kept = False
        if cache is not None and code == 0 and program:
            kept = await asyncio.to_thread(cache.store, key, program, words)
        return CompileExit(exit_code=code, oom_killed=bool(kills), kept=kept)

    async def _relay_compile(self, sink: OutputSink, keep: int) -> tuple[int | None, bytes, bytes]:
        """Relay the launcher's compile frames: the compiler's words to `sink`.

        Returns the compiler's exit code (None when the box stopped first),
        the program's bytes (at most `keep`; none when it was not sent) and
        the compiler's words (past `MAX_COMPILER_OUTPUT_BYTES`, a prefix longer than that).
        """
        program, words = bytearray(), bytearray()
        try:
            while (line := await self._launcher_line()) is not None:
                kind, _, payload = line.partition(b"]")
                if kind == _COMPILER_OUTPUT:
                    data = binascii.a2b_base64(payload)
                    if len(words) <= MAX_COMPILER_OUTPUT_BYTES:
                        words += data
                    await sink(data, COMPILER)
                elif kind == _PROGRAM and len(program) + len(payload) * 3 // 4 <= keep:
                    program += binascii.a2b_base64(payload)
                elif kind == _COMPILED:
                    return int(payload), bytes(program), bytes(words)
                else:
                    raise SandboxError("the runtime image's launcher did not answer")
        except (binascii.Error, ValueError) as exc:
            raise SandboxError("the runtime image's launcher did not answer") from exc
        return None, b"", b""

    async def _launcher_line(self) -> bytes | None:
        """The launcher's next line on stdout (its end stripped); None when the box stopped.

        Before "go" only the launcher writes to stdout; what is on stderr
        then is its own too (a compiler's goes through the launcher), logged
        and dropped.
        """
        while (end := self._prelude.find(b"\n")) < 0:
            if len(self._prelude) > _MAX_FRAME:
                raise SandboxError("the runtime image's launcher did not answer")
            message = await self._live_stream().read_out()
            if message is None:
                return None
            if message.stream == STDERR:
                log.warning("box %s: the launcher wrote on stderr: %r", self.box_id, message.data)
            else:
                self._prelude += message.data
        line, self._prelude = self._prelude[:end], self._prelude[end + 1 :]
        return line.rstrip(b"\r")

    async def _stops_soon(self) -> bool:
        """Whether the container stops right after its compiler was killed.

        A sandbox that died (gVisor's whole sandbox dies at its memory limit)
        may end the compiler a moment before the engine reports it stopped; a
        plain compile error never gets here (exit codes above 128 mean a signal).
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._live_container().wait(), _BOX_DEATH_GRACE_S)
            return True
        return False

    async def go(self, argv: list[str], *, in_launcher: bool = False) -> None:
        """Tell the launcher to exec the program (or run it itself); returns once it has."""
        order: dict[str, list[str] | bool] = {"argv": argv}
        if self._install is not None:
            order["install"] = list(self._install)
        if in_launcher:
            order["here"] = True
        line = json.dumps(order).encode() + b"\n"
        await self.write(line)
        with engine_errors("start the program"):
            if output := await self._read_through(GO_MARKER, keep_stderr=True):
                self._pending.append((STDOUT, output))

    async def read(self) -> tuple[StreamId, bytes] | None:
        """The next chunk of program output and its stream; None at the end."""
        if self._pending:
            return self._pending.popleft()
        with engine_errors("stream output"):
            message = await self._live_stream().read_out()
        return None if message is None else (message.stream, message.data)

    def is_alive(self) -> bool:
        """Whether the container still runs with its attach open (an idle box may have died)."""
        if self._container is None or self._engine.events.has_died(self._container.id):
            return False
        return self._attach_transport() is not None

    def _attach_transport(self) -> asyncio.WriteTransport | None:
        # aiodocker exposes neither the half-close nor the state of the attach
        # connection: both need its transport.
        response = self._stream._resp if self._stream is not None else None
        connection = response.connection if response is not None else None
        transport = connection.transport if connection is not None else None
        return None if transport is None or transport.is_closing() else transport

    async def write(self, data: bytes) -> None:
        """Bytes to the program's stdin; waits while the engine pushes back."""
        if self._attach_transport() is None:
            raise SandboxError(ATTACH_LOST)
        with engine_errors("write stdin"):
            await self._live_stream().write_in(data)

    async def close_stdin(self) -> None:
        """End of input without a terminal: half-close the attach stream."""
        # The engine closes the program's stdin when ours ends (StdinOnce),
        # while output keeps flowing.
        if (transport := self._attach_transport()) is not None:
            transport.write_eof()

    async def resize(self, cols: int, rows: int) -> None:
        """Set the terminal size the program sees (no engine call when unchanged)."""
        if self._size == (cols, rows):
            return
        with engine_errors("resize the terminal"):
            async with self._engine.control_timeout():
                await self._live_container().resize(h=rows, w=cols)
        self._size = (cols, rows)

    async def signal(self, name: str) -> None:
        """Deliver a signal: SIGSTOP and SIGCONT to every process, others through the init.

        Returns once the signal is sent, so one sent next cannot overtake it.
        """
        inside = _SIGNALS_FROM_INSIDE.get(name)
        with engine_errors(f"send {name}"):
            async with self._engine.control_timeout():
                if inside is None:
                    self._engine.events.expect_kill(self.id, name)
                    await self._live_container().kill(signal=name)
                    return
                execution = await self._live_container().exec(
                    ["kill", inside, "-1"],
                    user=SANDBOX_USER,
                    stdout=False,
                    stderr=False,
                )
                # Attached, the stream ends when `kill` has run (detached,
                # a SIGCONT right behind a SIGSTOP could run first).
                async with execution.start(detach=False) as stream:
                    while await stream.read_out() is not None:
                        pass

    async def kill(self) -> None:
        """Stop everything in the container at once (idempotent; no-op once destroyed)."""
        if self._container is None:
            return
        self._engine.events.expect_kill(self._container.id, "SIGKILL")
        with contextlib.suppress(SandboxError), engine_errors("kill"):
            async with self._engine.control_timeout():
                await self._container.kill(signal="SIGKILL")

    async def sample_usage(self) -> Usage:
        """Read the cgroup now (off the event loop); remembered for `wait_exit`."""
        usage = await asyncio.to_thread(read_usage, self.id)
        if usage.memory_peak_bytes is not None:
            self._last_usage = usage.with_processes_of(self._last_usage)
        return self._last_usage

    async def wait_exit(self) -> BoxExit:
        """Wait for the container to stop and say how its program ended."""
        await self.sample_usage()
        try:
            with engine_errors("wait for the program"):
                result: dict[str, Any] = await self._live_container().wait()
                async with self._engine.control_timeout():
                    info = await self._live_container().show()
        except EngineUnreachable as exc:
            raise SandboxError(STOPPED_BY_ENGINE) from exc
        code = int(result.get("StatusCode", -1))
        state = info.get("State", {})
        oom = bool(state.get("OOMKilled")) or self._engine.events.was_oom_killed(self.id)
        signal = signal_of_exit_code(code)
        usage = self._last_usage
        if (
            signal is not None
            and not oom
            and await self._engine.events.stopped_by_engine(self.id, signal)
        ):
            raise SandboxError(STOPPED_BY_ENGINE)
        # The wait above may have brought a late `oom` event, or the cgroup
        # told of the kill before it vanished.
        oom = (
            oom
            or self._engine.events.was_oom_killed(self.id)
            or killed_at_memory_limit(
                signal,
                sent_kill=self._engine.events.sent_kill(self.id),
                usage=usage,
                memory_limit_bytes=engine_limits(
                    self._engine.settings, self.profile.limits, self.profile.runtime
                )[0],
            )
        )
        return BoxExit(
            exit_code=code,
            signal=signal,
            oom_killed=oom,
            usage=usage,
            process_limit_reached=self._died_at_process_limit(code, oom, usage),
        )

    def _died_at_process_limit(self, code: int, oom: bool, usage: Usage) -> bool:
        """Whether gVisor's Sentry died at the pids limit (its Go runtime then exits 2).

        gVisor counts no processes of its own: a fork bomb grows until the
        Sentry cannot create a host thread, and the whole sandbox ends with
        the exit code a program could give too. The pids cgroup tells them
        apart: it refused a new task, or its last sample (taken often near
        the limit: `Usage.nears_process_limit`) was past half of it.
        The cgroup vanishes with the sandbox, often before a later sample.
        """
        if self.profile.runtime != "runsc" or code != _GO_RUNTIME_FATAL or oom:
            return False
        return bool(usage.forks_refused) or usage.nears_process_limit

    async def destroy(self) -> None:
        """Remove the container, then the staging folder; bounded, never raises.

        Runs to completion even when the caller is cancelled.
        """
        await asyncio.shield(self._engine.clean_up(self._destroy()))

    async def _destroy(self) -> None:
        container, self._container = self._container, None
        if container is None:
            # The create may have failed on our side yet succeeded in the engine.
            container = self._engine.docker.containers.container(f"ce-{self.box_id}")
        if self._stream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._stream.close(), timeout=1)
        try:
            await self._engine.remove_container(container)
            if self.profile.network is not None:
                await self._engine.egress().detach(self.box_id)
        except SandboxError as exc:
            log.warning("box %s not removed now (%s); the reaper will", self.box_id, exc.message)
            return  # the folder stays while its container may run: the reaper removes both
        finally:
            self._engine.live_boxes.discard(self.box_id)
        await asyncio.to_thread(self._staging.remove)


async def start_box(
    engine: Engine, profile: BoxProfile, *, size: tuple[int, int] = (80, 24)
) -> Box:
    """A started, empty container whose launcher waits; cleaned up if starting fails."""
    box_id = uuid.uuid4().hex
    engine.live_boxes.add(box_id)
    try:
        # A plain mkdir, not in a thread: a cancelled thread would still create it.
        staging = StagingDir(
            engine.settings.staging_root, engine.server_id, box_id, profile.placeholders
        )
    except BaseException:  # e.g. the disk is full: no box to remember
        engine.live_boxes.discard(box_id)
        raise
    box = Box(engine, box_id, staging, profile)
    try:
        await box._start(size)
    except BaseException:
        await box.destroy()
        raise
    engine.on_box_started(time.monotonic() - box.created)
    return box
