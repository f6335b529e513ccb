"""8. Soak: thousands of runs through every surface, with faults, and nothing may pile up.

One server (warm pool on) takes a seeded mix of cases, 16 at a time: hello
worlds in Python, Bash, C and JavaScript over the native WebSocket, REST
`/api/v1/execute`, Piston, Judge0 and Codapi; and over the WebSocket, clients
that disconnect mid-run, `kill`, signals (SIGINT, SIGTERM, SIGKILL), an
output flood within the cap, a stdin flood, the output cap, the memory cap,
the wall clock; over REST, a client that leaves mid-run and the memory cap.
Each case has the outcomes it may end with; any other is counted by cause.
Every few seconds the server's RSS, open file descriptors and a WebSocket
ping's round trip (the event loop's lag as a client sees it) are sampled;
their least-squares slope over the runs (after the first tenth, the
warm-up) must be flat. Afterwards, with the server up and settled, it holds
only its idle pool (no container left, no staging folder); once it stops,
nothing of its id remains on the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp

from bench.client import Session
from bench.common import BenchContext, BenchResult
from bench.engine import idle_count, leaks_while_up, sweep, wait_clean
from bench.programs import HELLO_C, flood_python
from bench.progress import say
from bench.server import MIB, BenchServer, bench_server, server_env
from bench.stats import Table, fmt

#: Not `ce-bench-*`: every `python -m bench` sweeps those owners before and after each
#: benchmark, and another bench run on the shared engine would remove this one's boxes.
SERVER_ID = "ce-soak"
DEFAULT_RUNS = 10_000
DEFAULT_SEED = 19
CONCURRENCY = 16
SAMPLE_EVERY_S = 2.0
#: The first tenth of the runs warms the server up (imports, allocator arenas, the pool).
WARMUP_FRACTION = 0.1
#: Outcome of a run whose client left on purpose before it ended.
DISCONNECTED = "disconnected"
_RUN_TIMEOUT_S = 90.0
_EXAMPLES_KEPT = 3
_HTTP_TIMEOUT = aiohttp.ClientTimeout(total=_RUN_TIMEOUT_S)
#: Where a server that measures its own Python heap (tests.traced_server) writes it.
HEAP_FILE_ENV = "CODE_EXECUTOR_TEST_HEAP_FILE"

SOAK_ENV = {
    # Codapi's own 5 s step budget (the default) is its widget's; 16 runs at once
    # on a small shared machine can take longer than that to start Node.
    "CE_CODAPI__WALL_MS": "30000",
}
HELLO = {
    "python": 'print("hello")\n',
    "bash": "echo hello\n",
    "c": HELLO_C.replace("hello, world", "hello"),
    "javascript": 'console.log("hello")\n',
}
#: Prints a line every 50 ms for half a minute: something live to leave, kill or signal.
TICKING = {
    "python": "import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.05)\n",
    "bash": "for i in $(seq 600); do echo $i; sleep 0.05; done\n",
}
#: Reads its raw terminal until Ctrl-D, then says how much it read.
STDIN_SINK = """\
import os, tty
tty.setraw(0)
os.write(1, b"ready>")
total = 0
while True:
    data = os.read(0, 65536)
    total += len(data)
    if not data or b"\\x04" in data:
        break
os.write(1, b"read %d" % total)
"""
ENDLESS_OUTPUT = "while True:\n    print('x' * 100)\n"
#: Touches every page it takes (a `bytearray(n)` is calloc'd zero pages, never charged).
GREEDY = "blocks = []\nwhile True:\n    blocks.append(b'x' * (8 << 20))\n"
SLEEPER = "import time\ntime.sleep(30)\n"
FLOOD_BYTES = 512 * 1024
STDIN_FRAMES, STDIN_FRAME_BYTES = 64, 4096


@dataclass(frozen=True, slots=True)
class Case:
    """One kind of run: how it is driven and the outcomes it may end with."""

    name: str
    surface: str
    weight: int
    expected: frozenset[str]
    drive: Callable[[Driver, random.Random], Awaitable[str]]


@dataclass
class Driver:
    """What a case needs to reach the server."""

    http: aiohttp.ClientSession
    server: BenchServer
    #: What the server said about this run's end (kept for the unexpected ones).
    detail: str = ""

    async def session(self) -> Session:
        return await Session.open(self.http, self.server.ws_url)

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with self.http.post(
            self.server.url + path, json=body, timeout=_HTTP_TIMEOUT
        ) as response:
            answer: dict[str, Any] = await response.json(content_type=None)
            self.detail = json.dumps(answer)[:300]
            return response.status, answer


async def _ws_end(driver: Driver, session: Session) -> str:
    """How the run on `session` ended: its `exit` status, an `error` code, or `closed`."""
    while True:
        message = await session.next_message(within_s=_RUN_TIMEOUT_S)
        match message["type"]:
            case "exit" | "error":
                driver.detail = f"{driver.detail}: {json.dumps(message)[:300]}"
                return (
                    str(message["status"])
                    if message["type"] == "exit"
                    else f"error {message['code']}"
                )
            case "closed":
                return "closed without exit"


async def _ws_started(driver: Driver, session: Session) -> str | None:
    """Wait for `started`; None if it came, else how the run ended before it."""
    while True:
        message = await session.next_message(within_s=_RUN_TIMEOUT_S)
        match message["type"]:
            case "started":
                return None
            case "exit" | "error":
                driver.detail = f"{driver.detail}: {json.dumps(message)[:300]}"
                return (
                    str(message["status"])
                    if message["type"] == "exit"
                    else f"error {message['code']}"
                )
            case "closed":
                return "closed without exit"


async def _over_ws(
    driver: Driver,
    language: str,
    code: str,
    during: Callable[[Session], Awaitable[str | None]] | None = None,
    **fields: Any,
) -> str:
    """One run on a fresh socket; `during` acts once it started (a str result ends it)."""
    session = await driver.session()
    try:
        await session.run(language, code, **fields)
        driver.detail = language
        if during is not None:
            early = await _ws_started(driver, session)
            if early is not None:
                return early
            acted = await during(session)
            if acted is not None:
                return acted
        return await _ws_end(driver, session)
    finally:
        await session.close()


def _ws_hello(language: str) -> Callable[[Driver, random.Random], Awaitable[str]]:
    async def drive(driver: Driver, rng: random.Random) -> str:
        return await _over_ws(driver, language, HELLO[language])

    return drive


async def _ws_disconnect(driver: Driver, rng: random.Random) -> str:
    language = rng.choice(sorted(TICKING))
    delay = rng.uniform(0.0, 1.0)

    async def leave(session: Session) -> str:
        await asyncio.sleep(delay)
        return DISCONNECTED  # the socket closes in `_over_ws`'s finally

    return await _over_ws(driver, language, TICKING[language], leave)


async def _ws_kill(driver: Driver, rng: random.Random) -> str:
    language = rng.choice(sorted(TICKING))
    delay = rng.uniform(0.0, 0.5)

    async def kill(session: Session) -> None:
        await asyncio.sleep(delay)
        await session.ws.send_str(json.dumps({"type": "kill"}))

    return await _over_ws(driver, language, TICKING[language], kill)


def _ws_signal(name: str) -> Callable[[Driver, random.Random], Awaitable[str]]:
    async def drive(driver: Driver, rng: random.Random) -> str:
        language = rng.choice(sorted(TICKING))
        delay = rng.uniform(0.05, 0.5)

        async def signal(session: Session) -> None:
            await asyncio.sleep(delay)
            await session.ws.send_str(json.dumps({"type": "signal", "signal": name}))

        return await _over_ws(driver, language, TICKING[language], signal)

    return drive


async def _ws_output_flood(driver: Driver, rng: random.Random) -> str:
    return await _over_ws(driver, "python", flood_python(FLOOD_BYTES))


async def _ws_stdin_flood(driver: Driver, rng: random.Random) -> str:
    async def flood(session: Session) -> None:
        await session.output_until(b"ready>")
        for _ in range(STDIN_FRAMES):
            await session.keys(b"a" * STDIN_FRAME_BYTES)
        await session.keys(b"\x04")

    return await _over_ws(driver, "python", STDIN_SINK, flood)


async def _ws_output_limit(driver: Driver, rng: random.Random) -> str:
    return await _over_ws(driver, "python", ENDLESS_OUTPUT, limits={"output_bytes": 4096})


async def _ws_oom(driver: Driver, rng: random.Random) -> str:
    return await _over_ws(driver, "python", GREEDY, limits={"memory_mb": 32})


async def _ws_timeout(driver: Driver, rng: random.Random) -> str:
    return await _over_ws(driver, "python", SLEEPER, limits={"wall_ms": 300})


async def _rest(driver: Driver, body: dict[str, Any]) -> str:
    status, answer = await driver.post("/api/v1/execute", body)
    if status != 200:
        return f"HTTP {status} {answer.get('error', {}).get('code')}"
    return str(answer["status"])


async def _rest_hello(driver: Driver, rng: random.Random) -> str:
    language = rng.choice(sorted(HELLO))
    return await _rest(driver, {"language": language, "code": HELLO[language]})


async def _rest_oom(driver: Driver, rng: random.Random) -> str:
    return await _rest(driver, {"language": "python", "code": GREEDY, "limits": {"memory_mb": 32}})


async def _rest_disconnect(driver: Driver, rng: random.Random) -> str:
    body = {"language": "python", "code": TICKING["python"]}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(rng.uniform(0.3, 1.5)):
            return await _rest(driver, body)
    return DISCONNECTED


def _said_hello(stdout: Any) -> str:
    return "exited" if stdout == "hello\n" else f"wrong answer {str(stdout)[:40]!r}"


async def _piston(driver: Driver, rng: random.Random) -> str:
    language = rng.choice(sorted(HELLO))
    body = {"language": language, "version": "*", "files": [{"content": HELLO[language]}]}
    status, answer = await driver.post("/piston/api/v2/execute", body)
    if status != 200:
        return f"HTTP {status}"
    return _said_hello((answer.get("run") or {}).get("stdout"))


JUDGE0_IDS = {"python": 71, "bash": 46, "c": 50, "javascript": 63}


async def _judge0(driver: Driver, rng: random.Random) -> str:
    language = rng.choice(sorted(HELLO))
    body = {"source_code": HELLO[language], "language_id": JUDGE0_IDS[language]}
    status, answer = await driver.post("/judge0/submissions?wait=true", body)
    if status != 201:
        return f"HTTP {status}"
    return _said_hello(answer.get("stdout"))


async def _codapi(driver: Driver, rng: random.Random) -> str:
    language = rng.choice(sorted(HELLO))
    body = {"sandbox": language, "command": "run", "files": {"": HELLO[language]}}
    status, answer = await driver.post("/codapi/v1/exec", body)
    if status != 200:
        return f"HTTP {status}"
    return _said_hello(answer.get("stdout"))


def _expect(*outcomes: str) -> frozenset[str]:
    return frozenset(outcomes)


EXITED = _expect("exited")
CASES = (
    *(Case(f"hello {lang}", "WebSocket", 6, EXITED, _ws_hello(lang)) for lang in HELLO),
    Case("disconnect mid-run", "WebSocket", 8, _expect(DISCONNECTED), _ws_disconnect),
    Case("kill", "WebSocket", 6, _expect("killed"), _ws_kill),
    # SIGINT/SIGTERM end the program by its own (default) handling: `exited` with the signal.
    Case("SIGINT", "WebSocket", 4, EXITED, _ws_signal("SIGINT")),
    Case("SIGTERM", "WebSocket", 4, EXITED, _ws_signal("SIGTERM")),
    Case("SIGKILL", "WebSocket", 3, _expect("killed"), _ws_signal("SIGKILL")),
    Case("output flood 512 KiB", "WebSocket", 4, EXITED, _ws_output_flood),
    Case("stdin flood 256 KiB", "WebSocket", 4, EXITED, _ws_stdin_flood),
    Case("output limit", "WebSocket", 4, _expect("output_limit"), _ws_output_limit),
    Case("oom", "WebSocket", 3, _expect("oom"), _ws_oom),
    Case("wall-clock timeout", "WebSocket", 3, _expect("timeout"), _ws_timeout),
    Case("hello", "REST", 8, EXITED, _rest_hello),
    Case("oom", "REST", 2, _expect("oom"), _rest_oom),
    Case("disconnect mid-run", "REST", 3, _expect(DISCONNECTED), _rest_disconnect),
    Case("hello", "Piston", 6, EXITED, _piston),
    Case("hello", "Judge0", 6, EXITED, _judge0),
    Case("hello", "Codapi", 6, EXITED, _codapi),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """The server observed once, after `runs` runs had ended."""

    runs: int
    rss_bytes: int
    open_fds: int
    ping_ms: float
    #: What the server's Python heap holds after a full collection, when it reports it.
    python_heap_bytes: int | None = None


@dataclass
class SoakReport:
    """Everything a soak measured."""

    runs: int
    seed: int
    seconds: float = 0.0
    #: (case label, outcome) → count.
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, str]] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)
    #: "case → outcome" → what the server said, for the first few unexpected ends.
    examples: dict[str, list[str]] = field(default_factory=dict)
    pool_size: int = 0
    leaked_containers: int = 0
    leaked_staging: int = 0
    left_after_stop: int = 0
    engine_containers_before: int = 0
    engine_containers_after: int = 0
    tracebacks_in_log: int = 0

    def slope_per_1000(
        self, metric: Callable[[Sample], float], *, warmup: float = WARMUP_FRACTION
    ) -> float:
        """Least-squares slope of `metric` per 1,000 runs, leaving out the `warmup` fraction."""
        after = [s for s in self.samples if s.runs >= self.runs * warmup]
        return least_squares_slope([(s.runs, metric(s)) for s in after]) * 1000


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    """dy/dx of the least-squares line through `points` (0 with fewer than two x values)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


def label(case: Case) -> str:
    return f"{case.surface}: {case.name}"


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _ping_ms(session: Session) -> float:
    began = time.perf_counter()
    await session.ws.send_str(json.dumps({"type": "ping"}))
    await session.expect("pong", within_s=30)
    return (time.perf_counter() - began) * 1000


def _python_heap(heap_file: Path | None) -> int | None:
    if heap_file is None or not heap_file.exists():
        return None
    return int(heap_file.read_text())


async def _sampler(
    driver: Driver,
    report: SoakReport,
    done: Callable[[], int],
    stop: asyncio.Event,
    heap_file: Path | None,
) -> None:
    probe = await driver.session()
    try:
        while not stop.is_set():
            pid = driver.server.process.pid
            ping = await _ping_ms(probe)
            rss, fds, heap = driver.server.rss_bytes(), _open_fds(pid), _python_heap(heap_file)
            report.samples.append(Sample(done(), rss, fds, ping, heap))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
    finally:
        await probe.close()


async def _drive_all(
    http: aiohttp.ClientSession,
    server: BenchServer,
    report: SoakReport,
    plan: list[tuple[Case, int]],
    heap_file: Path | None,
) -> None:
    queue: asyncio.Queue[tuple[Case, int]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    finished = 0
    stop = asyncio.Event()
    began = time.monotonic()

    async def worker() -> None:
        nonlocal finished
        while not queue.empty():
            case, case_seed = queue.get_nowait()
            driver = Driver(http, server)
            try:
                outcome = await case.drive(driver, random.Random(case_seed))
            except Exception as exc:  # the client's own failure is an outcome too
                outcome = f"client error {type(exc).__name__}"
            report.outcomes[label(case), outcome] += 1
            if outcome not in case.expected:
                report.unexpected[label(case), outcome] += 1
                examples = report.examples.setdefault(f"{label(case)} → {outcome}", [])
                if len(examples) < _EXAMPLES_KEPT:
                    examples.append(driver.detail)
            finished += 1
            if finished % 500 == 0:
                say(
                    f"soak: {finished}/{len(plan)} runs in {time.monotonic() - began:.0f}s, "
                    f"{sum(report.unexpected.values())} unexpected"
                )

    sampler = asyncio.create_task(
        _sampler(Driver(http, server), report, lambda: finished, stop, heap_file)
    )
    try:
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    finally:
        stop.set()
        await sampler


def plan_for(runs: int, seed: int) -> list[tuple[Case, int]]:
    """The seeded sequence of cases (each with its own seed for delays and languages)."""
    rng = random.Random(seed)
    cases = rng.choices(CASES, weights=[case.weight for case in CASES], k=runs)
    return [(case, rng.getrandbits(32)) for case in cases]


async def _engine_count(docker: aiodocker.Docker) -> int:
    return len(await docker.containers.list(all=True))


async def soak(
    docker: aiodocker.Docker,
    http: aiohttp.ClientSession,
    *,
    runs: int,
    seed: int = DEFAULT_SEED,
    server_id: str = SERVER_ID,
    pool: bool = True,
    module: str = "ce_ws",
    heap_file: Path | None = None,
) -> SoakReport:
    """Drive `runs` seeded cases through a fresh server; measure what stayed behind.

    `module` serves (`python -m <module> serve`): a test passes its spec recorder,
    or, with `heap_file`, its server that writes its Python heap there (tests.traced_server).
    """
    report = SoakReport(runs=runs, seed=seed)
    report.engine_containers_before = await _engine_count(docker)
    heap_env = {HEAP_FILE_ENV: str(heap_file)} if heap_file is not None else {}
    env = server_env(server_id, pool=pool, **SOAK_ENV, **heap_env)
    began = time.monotonic()
    async with bench_server(env, module=module) as server:
        report.pool_size = await idle_count(docker, server_id)
        await _drive_all(http, server, report, plan_for(runs, seed), heap_file)
        report.seconds = time.monotonic() - began
        leaks = await leaks_while_up(docker, server_id, report.pool_size)
        report.leaked_containers, report.leaked_staging = leaks.containers, leaks.staging
    report.left_after_stop = (await wait_clean(docker, [server_id], timeout_s=10)).count
    report.engine_containers_after = await _engine_count(docker)
    report.tracebacks_in_log = _tracebacks(server.log_path)
    if report.left_after_stop:
        say(f"soak: left after stop, now removed: {await sweep(docker, [server_id])}")
    return report


def _tracebacks(log_path: Path) -> int:
    return log_path.read_text(errors="replace").count("Traceback (most recent call last)")


def _outcome_table(report: SoakReport) -> Table:
    rows = []
    for case in CASES:
        name = label(case)
        ended = {o: n for (c, o), n in report.outcomes.items() if c == name}
        other = {o: n for o, n in ended.items() if o not in case.expected}
        rows.append(
            [
                name,
                ", ".join(sorted(case.expected)),
                str(sum(ended.values())),
                ", ".join(f"{o} {n}" for o, n in sorted(ended.items()) if o in case.expected),
                ", ".join(f"{o} {n}" for o, n in sorted(other.items())) or "0",
            ]
        )
    return Table(
        title=f"Soak: {report.runs:,} runs, {CONCURRENCY} at a time, seed {report.seed}",
        headers=["case", "may end", "runs", "ended as expected", "anything else"],
        rows=rows,
        notes=(
            f"{report.seconds:.0f} s in all ({report.runs / report.seconds:.1f} runs/s); "
            "one fresh WebSocket per run, REST requests over keep-alive.",
            f"{DISCONNECTED}: the client closed its socket (or dropped its request) on purpose "
            "before the end; the server must end the run and remove its container.",
        ),
    )


def _health_table(report: SoakReport) -> Table:
    first, last = report.samples[0], report.samples[-1]
    metrics: list[tuple[str, Callable[[Sample], float], int]] = [
        ("server RSS (MiB)", lambda s: s.rss_bytes / MIB, 1),
        ("open file descriptors", lambda s: s.open_fds, 1),
        ("ping round trip (ms)", lambda s: s.ping_ms, 1),
    ]
    rows = [
        [
            name,
            fmt(metric(first), digits),
            fmt(metric(last), digits),
            fmt(max(metric(s) for s in report.samples), digits),
            fmt(report.slope_per_1000(metric), 2),
        ]
        for name, metric, digits in metrics
    ]
    return Table(
        title="Soak: the server over time, and what was left",
        headers=["sampled", "first", "last", "max", "slope per 1,000 runs"],
        rows=rows,
        notes=(
            f"{len(report.samples)} samples, one every {SAMPLE_EVERY_S:.0f} s; the slope is a "
            f"least-squares fit against runs ended, leaving out the first "
            f"{WARMUP_FRACTION:.0%} (warm-up). The ping is a `ping` → `pong` on a socket of "
            "its own: the event loop's lag as a client sees it, under 16 live runs.",
            f"Left with the server up and settled: {report.leaked_containers} containers "
            f"beyond its idle pool of {report.pool_size}, {report.leaked_staging} staging "
            f"folders; after it stopped: {report.left_after_stop} of its id. Engine "
            f"containers (shared with other work) {report.engine_containers_before} before, "
            f"{report.engine_containers_after} after. Tracebacks in the server's log: "
            f"{report.tracebacks_in_log}.",
        ),
    )


async def run(ctx: BenchContext) -> BenchResult:
    """The soak: `CE_BENCH_SOAK_RUNS` runs (10,000; 300 with --quick), `CE_BENCH_SOAK_SEED`."""
    runs = int(os.environ.get("CE_BENCH_SOAK_RUNS", 300 if ctx.quick else DEFAULT_RUNS))
    seed = int(os.environ.get("CE_BENCH_SOAK_SEED", DEFAULT_SEED))
    result = BenchResult(name="soak", title="Soak", what=__doc__.split("\n\n", 1)[1].strip())
    report = await soak(ctx.docker, ctx.http, runs=runs, seed=seed)
    result.tables += [_outcome_table(report), _health_table(report)]
    unexpected = sum(report.unexpected.values())
    result.headline.append(
        f"soak: {runs:,} runs (seed {seed}) in {report.seconds:.0f}s, {unexpected} unexpected "
        f"outcomes, {report.leaked_containers} containers and {report.leaked_staging} staging "
        f"folders left; RSS slope {report.slope_per_1000(lambda s: s.rss_bytes / MIB):.2f} "
        f"MiB per 1,000 runs"
    )
    result.data = {
        "runs": runs,
        "seed": seed,
        "seconds": report.seconds,
        "outcomes": [[c, o, n] for (c, o), n in sorted(report.outcomes.items())],
        "unexpected": [[c, o, n] for (c, o), n in sorted(report.unexpected.items())],
        "unexpected_examples": report.examples,
        "samples": [[s.runs, s.rss_bytes, s.open_fds, round(s.ping_ms, 2)] for s in report.samples],
        "leaked_containers": report.leaked_containers,
        "leaked_staging": report.leaked_staging,
        "left_after_stop": report.left_after_stop,
        "engine_containers": [report.engine_containers_before, report.engine_containers_after],
        "tracebacks_in_log": report.tracebacks_in_log,
    }
    return result
