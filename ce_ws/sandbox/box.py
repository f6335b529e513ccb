"""One container's life: staged, created, attached, started, driven, removed.

`open_box` is the only way to get a `Box`; leaving its context removes the
container and then the staging folder, bounded in time, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiodocker.containers import DockerContainer
from aiodocker.stream import Stream

from ce_ws.config import RunLimits
from ce_ws.errors import SandboxError
from ce_ws.sandbox.cgroup import Usage, read_usage
from ce_ws.sandbox.engine import OWNER_LABEL, RUN_LABEL, Engine, engine_errors
from ce_ws.sandbox.spec import DETACH_KEYS, SANDBOX_USER, container_config
from ce_ws.sandbox.staging import StagingDir
from ce_ws.types import COMPILER, STDOUT, OutputSink, StreamId

log = logging.getLogger(__name__)

READY_MARKER = b"\x1e[ce-ready]"
GO_MARKER = b"\x1e[ce-go]"
# Only the launcher writes before "go"; a few KiB covers it with room to spare.
_MAX_PRELUDE = 4096
# SIGSTOP cannot be forwarded by the init process (it would stop the init
# itself), so it goes to the program's processes from inside.
_SIGNALS_FROM_INSIDE = {"SIGSTOP": "-STOP"}
_SIGNAL_NUMBERS = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
    7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
    13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BoxPlan:
    """What one container needs; built by the session from a validated run."""

    run_id: str
    files: list[tuple[str, bytes]]
    command: list[str]
    limits: RunLimits
    tty: bool
    size: tuple[int, int]
    tmp_exec: bool


@dataclass(frozen=True, slots=True)
class BoxExit:
    """How the container's program ended, as the engine saw it."""

    exit_code: int | None
    signal: str | None
    oom_killed: bool
    usage: Usage = field(default_factory=lambda: Usage(None, None))


def signal_of_exit_code(code: int) -> str | None:
    """The signal behind an init's 128+N exit code, if any."""
    return _SIGNAL_NUMBERS.get(code - 128) if code > 128 else None


class Box:
    """A started container whose launcher waits for "go"."""

    def __init__(self, engine: Engine, container: DockerContainer, stream: Stream) -> None:
        self._engine = engine
        self._container = container
        self._stream = stream
        self._pending = b""
        self._last_usage = Usage(None, None)

    @property
    def id(self) -> str:
        return self._container.id

    async def wait_ready(self) -> None:
        """Consume the launcher's READY line; called once after start."""
        await self._skip_through(READY_MARKER)

    async def _skip_through(self, marker: bytes) -> None:
        # Before GO only the launcher writes, so nothing skipped here is the user's.
        prelude = self._pending
        while marker not in prelude:
            message = await self._stream.read_out()
            if message is None or len(prelude) > _MAX_PRELUDE:
                raise SandboxError("the runtime image's launcher did not answer")
            prelude += message.data
        rest = prelude.split(marker, 1)[1]
        self._pending = rest.split(b"\n", 1)[1] if b"\n" in rest else b""

    async def compile(self, argv: list[str], *, timeout_s: float, sink: OutputSink) -> int | None:
        """Run the compiler beside the waiting launcher; None when it timed out."""
        with engine_errors("start the compiler"):
            async with self._engine.control_timeout():
                execution = await self._container.exec(
                    argv, user=SANDBOX_USER, workdir="/tmp", stdout=True, stderr=True
                )
        try:
            async with asyncio.timeout(timeout_s):
                with engine_errors("stream the compiler's output"):
                    async with execution.start(detach=False) as stream:
                        while (message := await stream.read_out()) is not None:
                            await sink(message.data, COMPILER)
        except TimeoutError:
            return None
        with engine_errors("inspect the compiler"):
            async with self._engine.control_timeout():
                info = await execution.inspect()
        code: int = info["ExitCode"]
        return code

    async def go(self, extra_args: list[str]) -> None:
        """Tell the launcher to exec the program (with these extra arguments)."""
        line = json.dumps({"argv": extra_args}).encode() + b"\n"
        await self.write(line)
        with engine_errors("start the program"):
            await self._skip_through(GO_MARKER)

    async def read(self) -> tuple[StreamId, bytes] | None:
        """The next chunk of program output and its stream; None at the end."""
        if self._pending:
            chunk, self._pending = self._pending, b""
            return STDOUT, chunk
        with engine_errors("stream output"):
            message = await self._stream.read_out()
        return None if message is None else (message.stream, message.data)

    async def write(self, data: bytes) -> None:
        """Bytes to the program's stdin; waits while the engine pushes back."""
        with engine_errors("write stdin"):
            await self._stream.write_in(data)

    async def close_stdin(self) -> None:
        """End of input without a terminal: half-close the attach stream."""
        # aiodocker has no half-close; the engine closes the program's stdin
        # when ours ends (StdinOnce), while output keeps flowing.
        connection = self._stream._resp.connection if self._stream._resp else None
        if connection is not None and connection.transport is not None:
            connection.transport.write_eof()

    async def resize(self, cols: int, rows: int) -> None:
        """Set the terminal size the program sees."""
        with engine_errors("resize the terminal"):
            async with self._engine.control_timeout():
                await self._container.resize(h=rows, w=cols)

    async def signal(self, name: str) -> None:
        """Deliver a signal to the program."""
        inside = _SIGNALS_FROM_INSIDE.get(name)
        with engine_errors(f"send {name}"):
            async with self._engine.control_timeout():
                if inside is None:
                    await self._container.kill(signal=name)
                    return
                execution = await self._container.exec(
                    ["kill", inside, "-1"],
                    user=SANDBOX_USER,
                    stdout=False,
                    stderr=False,
                )
                await execution.start(detach=True)

    async def kill(self) -> None:
        """Stop everything in the container at once (idempotent)."""
        with contextlib.suppress(SandboxError), engine_errors("kill"):
            async with self._engine.control_timeout():
                await self._container.kill(signal="SIGKILL")

    def sample_usage(self) -> Usage:
        """Read the cgroup now and remember the reading for `wait_exit`."""
        usage = read_usage(self.id)
        if usage.memory_peak_bytes is not None:
            self._last_usage = usage
        return self._last_usage

    async def wait_exit(self) -> BoxExit:
        """Wait for the container to stop and say how its program ended."""
        self.sample_usage()
        with engine_errors("wait for the program"):
            result: dict[str, Any] = await self._container.wait()
            async with self._engine.control_timeout():
                info = await self._container.show()
        code = int(result.get("StatusCode", -1))
        state = info.get("State", {})
        oom = bool(state.get("OOMKilled")) or self._engine.was_oom_killed(self.id)
        return BoxExit(
            exit_code=code,
            signal=signal_of_exit_code(code),
            oom_killed=oom,
            usage=self._last_usage,
        )

    async def remove(self) -> None:
        """Remove the container, bounded in time; the reaper catches a failure."""
        try:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._stream.close(), timeout=1)
            async with self._engine.control_timeout():
                await self._container.delete(force=True)
        except Exception as exc:
            log.warning("container %s not removed now (%s); the reaper will", self.id[:12], exc)
        finally:
            self._engine.forget(self.id)


@contextlib.asynccontextmanager
async def open_box(engine: Engine, plan: BoxPlan) -> AsyncIterator[Box]:
    """Stage, create, attach, start and wait for the launcher; always clean up."""
    staging = await asyncio.to_thread(
        StagingDir, engine.settings.staging_root, engine.server_id, plan.run_id
    )
    box: Box | None = None
    try:
        await asyncio.to_thread(staging.write_files, plan.files)
        config = container_config(
            settings=engine.settings,
            limits=plan.limits,
            labels={RUN_LABEL: plan.run_id, OWNER_LABEL: engine.server_id},
            staging_path=str(staging.path),
            seccomp_profile=engine.seccomp_profile,
            tty=plan.tty,
            size=plan.size,
            tmp_exec=plan.tmp_exec,
            command=plan.command,
        )
        with engine_errors("create a container"):
            async with engine.control_timeout():
                container = await engine.docker.containers.create(config, name=f"ce-{plan.run_id}")
        stream = container.attach(stdin=True, stdout=True, stderr=True, detach_keys=DETACH_KEYS)
        box = Box(engine, container, stream)
        # Attach before start: output written before the attach exists is lost.
        with engine_errors("attach and start"):
            async with engine.control_timeout():
                await stream.__aenter__()
                await container.start()
                if plan.tty:
                    await container.resize(h=plan.size[1], w=plan.size[0])
                await box.wait_ready()
        yield box
    finally:
        # Shielded and bounded: a cancelled run must still leave nothing behind.
        await asyncio.shield(engine.clean_up(_cleanup(box, staging)))


async def _cleanup(box: Box | None, staging: StagingDir) -> None:
    if box is not None:
        await box.remove()
    await asyncio.to_thread(staging.remove)


class DockerSandbox:
    """The real `Sandbox` of the session layer: boxes on this engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_box(self, plan: BoxPlan) -> contextlib.AbstractAsyncContextManager[Box]:
        """A started container for `plan`, removed when the context ends."""
        return open_box(self.engine, plan)
