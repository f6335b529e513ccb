"""What users would use instead of the server: `docker run --rm`, and the raw engine.

Both baselines start containers from `ce_ws.sandbox.spec.container_config`, so
they carry exactly the server's hardening; only the command differs (the
program itself instead of the launcher that waits for "go").
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiodocker

from bench.engine import BASELINE_OWNER, BASELINE_STAGING_PREFIX, OWNER_LABEL
from bench.programs import Program
from ce_ws.config import RunLimits, Runtime, SandboxSettings
from ce_ws.sandbox.docker import SECCOMP_PROFILE
from ce_ws.sandbox.spec import DETACH_KEYS, container_config

_TERMINAL = (80, 24)


@contextlib.contextmanager
def staged(program: Program) -> Iterator[Path]:
    """A staging folder like the server's (file 0444, folder 0555), removed after."""
    path = Path(tempfile.mkdtemp(prefix=BASELINE_STAGING_PREFIX))
    try:
        entry = path / program.entry
        entry.write_text(program.source)
        entry.chmod(0o444)
        path.chmod(0o555)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def baseline_config(
    program: Program,
    staging: Path,
    *,
    runtime: Runtime,
    tty: bool,
    limits: RunLimits | None = None,
) -> dict[str, Any]:
    """The server's container spec for `program`, running it directly (no launcher)."""
    config = container_config(
        settings=SandboxSettings(),
        limits=limits or RunLimits(),
        runtime=runtime,
        labels={OWNER_LABEL: BASELINE_OWNER},
        staging_path=str(staging),
        seccomp_profile=SECCOMP_PROFILE.read_text(),
        tty=tty,
        size=_TERMINAL,
        tmp_exec=program.compiled,
    )
    config["Cmd"] = list(program.command)  # drop the launcher: nothing waits for "go"
    return config


# -- docker run --------------------------------------------------------------


def _host_flags(host: dict[str, Any]) -> list[str]:
    flags = [f"--runtime={host.pop('Runtime')}", f"--network={host.pop('NetworkMode')}"]
    flags += [f"--volume={bind}" for bind in host.pop("Binds")]
    flags += ["--read-only"] if host.pop("ReadonlyRootfs") else []
    flags += [f"--tmpfs={path}:{options}" for path, options in host.pop("Tmpfs").items()]
    flags += [f"--cap-drop={cap}" for cap in host.pop("CapDrop")]
    for option in host.pop("SecurityOpt"):
        # The API takes the profile's JSON; the CLI takes the file.
        flags.append(
            f"--security-opt=seccomp={SECCOMP_PROFILE}"
            if option.startswith("seccomp=")
            else f"--security-opt={option}"
        )
    flags += [f"--memory={host.pop('Memory')}b", f"--memory-swap={host.pop('MemorySwap')}b"]
    flags += [f"--cpus={host.pop('NanoCpus') / 1e9:g}", f"--pids-limit={host.pop('PidsLimit')}"]
    flags += [f"--ulimit={u['Name']}={u['Soft']}:{u['Hard']}" for u in host.pop("Ulimits")]
    flags += ["--init"] if host.pop("Init") else []
    flags += [f"--ipc={host.pop('IpcMode')}", f"--shm-size={host.pop('ShmSize')}b"]
    flags += [f"--cgroupns={host.pop('CgroupnsMode')}"]
    flags += [f"--oom-score-adj={host.pop('OomScoreAdj')}"]
    flags += [f"--log-driver={host.pop('LogConfig')['Type']}"]
    host.pop("AutoRemove")  # replaced by --rm
    host.pop("ConsoleSize")  # the CLI sets it from its own terminal
    # The CLI has no flag for a list of masked paths: `docker run` keeps the
    # engine's default list (two paths fewer to mask, which costs nothing
    # measurable at start).
    host.pop("MaskedPaths")
    if host:
        raise RuntimeError(f"bench/baseline.py cannot translate {sorted(host)} to docker run")
    return flags


def docker_run_argv(config: dict[str, Any]) -> list[str]:
    """`docker run --rm` with every flag of the create body `config`."""
    config = dict(config)
    host = dict(config.pop("HostConfig"))
    argv = ["docker", "run", "--rm", f"--user={config.pop('User')}"]
    argv += [f"--workdir={config.pop('WorkingDir')}"]
    argv += [f"--env={variable}" for variable in config.pop("Env")]
    argv += [f"--label={key}={value}" for key, value in config.pop("Labels").items()]
    argv += ["--tty"] if config.pop("Tty") else []
    argv += ["--interactive"] if config.pop("OpenStdin") else []
    argv += _host_flags(host)
    if config.pop("Entrypoint") != [] or not config.pop("NetworkDisabled"):
        raise RuntimeError("the spec changed: review bench/baseline.py")
    for attach in ("StdinOnce", "AttachStdin", "AttachStdout", "AttachStderr"):
        config.pop(attach)  # implied by --interactive and the CLI's own attach
    image, command = config.pop("Image"), config.pop("Cmd")
    if config:
        raise RuntimeError(f"bench/baseline.py cannot translate {sorted(config)} to docker run")
    return [*argv, image, *command]


@dataclass(frozen=True, slots=True)
class Timing:
    """One baseline run: time to the first output byte and to the end (seconds)."""

    first_byte_s: float
    total_s: float


async def docker_run(argv: list[str]) -> Timing:
    """Run the CLI; time its first stdout byte and its exit (container removed)."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = await process.stdout.read(1)
    first_at = time.perf_counter()
    _, stderr = await process.communicate()
    if not first or process.returncode != 0:
        raise RuntimeError(f"docker run failed ({process.returncode}): {stderr.decode()[-500:]}")
    return Timing(first_at - began, time.perf_counter() - began)


# -- the raw engine ----------------------------------------------------------


@contextlib.asynccontextmanager
async def attached(
    docker: aiodocker.Docker, config: dict[str, Any]
) -> AsyncIterator[tuple[Any, Any]]:
    """Create and attach (not yet started); removes the container afterwards."""
    container = await docker.containers.create(config)
    try:
        stream = container.attach(stdin=True, stdout=True, stderr=True, detach_keys=DETACH_KEYS)
        await stream.__aenter__()
        try:
            yield container, stream
        finally:
            await stream.close()
    finally:
        await container.delete(force=True)


async def engine_floor(docker: aiodocker.Docker, config: dict[str, Any]) -> Timing:
    """create → attach → start → first byte → end, straight through aiodocker."""
    began = time.perf_counter()
    async with attached(docker, config) as (container, stream):
        await container.start()
        message = await stream.read_out()
        first_at = time.perf_counter()
        if message is None:
            raise RuntimeError("the program printed nothing")
        while await stream.read_out() is not None:
            pass
        await container.wait()
        ended_at = time.perf_counter()
    return Timing(first_at - began, ended_at - began)


def hardening_summary(config: dict[str, Any]) -> str:
    """The flags of `docker run` in one line, for the report."""
    argv = docker_run_argv(config)
    return " ".join(argv[2 : len(argv) - len(config["Cmd"]) - 1])


class EngineEcho:
    """The echo program attached straight through aiodocker: the keystroke floor."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, docker: aiodocker.Docker, program: Program) -> AsyncIterator[EngineEcho]:
        """Start `program` (which prints `ready>` then echoes) in the server's spec."""
        with staged(program) as path:
            config = baseline_config(program, path, runtime="runc", tty=True)
            async with attached(docker, config) as (container, stream):
                await container.start()
                echo = cls(stream)
                await echo._read_until(b"ready>")
                yield echo

    async def _read_until(self, needle: bytes) -> float:
        seen = b""
        while needle not in seen:
            message = await self._stream.read_out()
            if message is None:
                raise RuntimeError("the echo program ended")
            seen = seen[-len(needle) :] + message.data
        return time.perf_counter()

    async def round_trip(self, key: bytes) -> float:
        """Send `key`, wait for it to come back; seconds."""
        sent_at = time.perf_counter()
        await self._stream.write_in(key)
        async with asyncio.timeout(10):
            return await self._read_until(key) - sent_at
