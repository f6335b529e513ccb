"""One server, two real Docker engines (`CE_SANDBOX__ENGINES`): placement, failure, drain.

Engine `main` is the machine's own; `scratch` is the fault pass's second
dockerd (its own socket, data root and exec root, no bridge), the one these
tests may stop. What must hold:

- runs spread over both engines, each on the one with the most free room;
- an engine that stops ends only its own runs, with `error`; the server stays
  ready, new runs go to the other engine, and the stopped one rejoins by
  itself once it answers;
- a drained engine keeps its live runs to their end, takes no new one and
  keeps no idle box; resumed, it takes runs and refills its pool;
- behind nginx, 60 students' interactive sessions land on both replicas
  and both engines, every one correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from ce_ws.config import Settings
from ce_ws.languages import load_languages
from ce_ws.sandbox.docker import pooled_profiles
from tests.faults.conftest import ScratchEngine, staging_folders
from tests.helpers import eventually
from tests.integration.balancer import greet, python_runs, replicas_behind_nginx
from tests.integration.server_process import ServerProcess, server_process
from tests.integration.terminal import TermClient

MAIN_URL = "unix:///var/run/docker.sock"
ADMIN_TOKEN = "test-admin-token-0123456789"
WAITING_PROGRAM = "print('waiting', flush=True)\nprint('got', input(), flush=True)\n"
STUDENTS = 60
_PLACEMENTS = re.compile(
    r'^ce_engine_placements_total\{engine="(?P<engine>[^"]+)"\} (?P<count>\S+)$', re.M
)


def engines_setting(scratch: ScratchEngine, capacity: int = 32) -> str:
    return json.dumps(
        [
            {"name": "main", "url": MAIN_URL, "capacity": capacity},
            {"name": "scratch", "url": scratch.url, "capacity": capacity},
        ]
    )


def main_containers(owner: str) -> dict[str, str]:
    """Name → state of this owner's containers on the machine's own engine."""
    listing = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=ce.owner={owner}", "--format", "{{json .}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in listing.stdout.splitlines()]
    return {row["Names"]: row["State"] for row in rows}


def run_engine(run_id: str, server: ServerProcess, scratch: ScratchEngine) -> str:
    """Which engine holds the run's container now (main asked first: scratch may be down)."""
    if any(run_id in name for name in main_containers(f"{server.server_id}-main")):
        return "main"
    if any(run_id in name for name in scratch.containers(f"{server.server_id}-scratch")):
        return "scratch"
    raise AssertionError(f"run {run_id} is on no engine")


def placements(server: ServerProcess) -> dict[str, float]:
    """Runs the replica placed on each engine, as its /metrics counts them."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {m["engine"]: float(m["count"]) for m in _PLACEMENTS.finditer(text)}


async def readiness(session: aiohttp.ClientSession, server: ServerProcess) -> dict[str, Any]:
    async with session.get(f"{server.url}/readyz") as response:
        body: dict[str, Any] = await response.json()
        body["status"] = response.status
        return body


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {engine["name"]: engine for engine in body["engines"]}


async def admin(
    session: aiohttp.ClientSession, server: ServerProcess, path: str, token: str | None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.post(f"{server.url}/admin/engines/{path}", headers=headers) as response:
        return response.status, await response.json()


async def start_waiting(term: TermClient) -> str:
    """Start the waiting program; its run id once it printed."""
    started = await term.run("python", WAITING_PROGRAM)
    assert started["type"] == "started", started
    await term.expect(b"waiting")
    return str(started["run_id"])


async def answer(term: TermClient, word: str) -> dict[str, Any]:
    await term.keys(f"{word}\r")
    await term.expect(f"got {word}".encode())
    ended: dict[str, Any] = await term.wait_exit(timeout=30)
    return ended


def assert_nothing_left(server: ServerProcess, scratch: ScratchEngine) -> None:
    for engine in ("main", "scratch"):
        owner = f"{server.server_id}-{engine}"
        assert staging_folders(owner) == [], owner
    assert main_containers(f"{server.server_id}-main") == {}
    assert scratch.containers(f"{server.server_id}-scratch") == {}


async def test_runs_spread_and_a_stopped_engine_is_left_out_until_it_answers(
    scratch_engine: ScratchEngine,
) -> None:
    with server_process(
        CE_SANDBOX__ENGINES=engines_setting(scratch_engine), CE_POOL__ENABLED="false"
    ) as server:
        async with aiohttp.ClientSession() as session:
            body = await readiness(session, server)
            assert body["status"] == 200, body
            assert [(e["name"], e["condition"]) for e in body["engines"]] == [
                ("main", "ready"),
                ("scratch", "ready"),
            ], body

            # Six at once: each goes where there is most room, so three and three.
            async with contextlib.AsyncExitStack() as stack:
                terms = [
                    await stack.enter_async_context(TermClient.connect_url(server.ws_url))
                    for _ in range(6)
                ]
                run_ids = [await start_waiting(term) for term in terms]
                placed = [run_engine(run_id, server, scratch_engine) for run_id in run_ids]
                assert sorted(placed) == ["main"] * 3 + ["scratch"] * 3, placed
                engines = by_name(await readiness(session, server))
                assert (engines["main"]["runs"], engines["scratch"]["runs"]) == (3, 3), engines
                ends = [await answer(term, f"w{n}") for n, term in enumerate(terms)]
                assert [(e["status"], e["exit_code"]) for e in ends] == [("exited", 0)] * 6

            async with (
                TermClient.connect_url(server.ws_url) as on_main,
                TermClient.connect_url(server.ws_url) as on_scratch,
            ):
                first, second = await start_waiting(on_main), await start_waiting(on_scratch)
                placed = {run_engine(first, server, scratch_engine): on_main}
                placed[run_engine(second, server, scratch_engine)] = on_scratch
                assert set(placed) == {"main", "scratch"}, placed

                await asyncio.to_thread(scratch_engine.stop)

                stopped = await placed["scratch"].wait_exit(timeout=30)
                assert stopped["status"] == "error", stopped
                assert "container engine stopped your program" in stopped["message"], stopped

                async def scratch_is_down() -> bool:
                    return (
                        by_name(await readiness(session, server))["scratch"]["condition"] == "down"
                    )

                await eventually(scratch_is_down, timeout_s=10, what="scratch shown down")
                body = await readiness(session, server)
                assert body["status"] == 200, "one engine answers: the server is ready"
                assert "not reachable" in by_name(body)["scratch"]["reason"], body

                # New runs go to the engine that answers, and work.
                async with TermClient.connect_url(server.ws_url) as meanwhile:
                    run_id = await start_waiting(meanwhile)
                    assert run_engine(run_id, server, scratch_engine) == "main"
                    assert (await answer(meanwhile, "still"))["status"] == "exited"
                # The other engine's run never noticed.
                ended = await answer(placed["main"], "untouched")
                assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended

            await asyncio.to_thread(scratch_engine.start)

            async def scratch_is_back() -> bool:
                return by_name(await readiness(session, server))["scratch"]["condition"] == "ready"

            await eventually(scratch_is_back, timeout_s=30, what="scratch rejoins", every_s=0.2)
            async with (
                TermClient.connect_url(server.ws_url) as one,
                TermClient.connect_url(server.ws_url) as two,
            ):
                ids = [await start_waiting(one), await start_waiting(two)]
                placed_after = sorted(run_engine(i, server, scratch_engine) for i in ids)
                assert placed_after == ["main", "scratch"], placed_after
                for term in (one, two):
                    assert (await answer(term, "back"))["status"] == "exited"

            async def all_gone() -> bool:
                return not scratch_engine.containers(f"{server.server_id}-scratch")

            # The box the stop killed went with the dead engine's state; the reaper takes any rest.
            await eventually(all_gone, timeout_s=10, what="the scratch engine's boxes removed")
    assert_nothing_left(server, scratch_engine)


async def test_a_drained_engine_keeps_its_live_run_and_takes_no_new_one(
    scratch_engine: ScratchEngine,
) -> None:
    with server_process(
        CE_SANDBOX__ENGINES=engines_setting(scratch_engine),
        CE_ADMIN_TOKEN=ADMIN_TOKEN,
        CE_POOL__ENABLED="true",
        CE_POOL__PER_PROFILE="1",
    ) as server:
        scratch_owner = f"{server.server_id}-scratch"
        async with aiohttp.ClientSession() as session:
            full = len(pooled_profiles(Settings(), load_languages()))  # one box a profile

            async def pools_full() -> bool:
                engines = by_name(await readiness(session, server))
                return all((engine["pool_idle"] or 0) >= full for engine in engines.values())

            await eventually(pools_full, timeout_s=60, what="both pools fill", every_s=0.2)

            assert (await admin(session, server, "scratch/drain", None))[0] == 401
            assert (await admin(session, server, "scratch/drain", "wrong-token-0123456"))[0] == 401
            status, body = await admin(session, server, "nowhere/drain", ADMIN_TOKEN)
            assert status == 404 and body["error"]["code"] == "unknown_engine", body

            async with (
                TermClient.connect_url(server.ws_url) as first,
                TermClient.connect_url(server.ws_url) as second,
            ):
                ids = [await start_waiting(first), await start_waiting(second)]
                on = {run_engine(run_id, server, scratch_engine): t for run_id, t in
                      zip(ids, (first, second), strict=True)}  # fmt: skip
                assert set(on) == {"main", "scratch"}, on

                status, body = await admin(session, server, "scratch/drain", ADMIN_TOKEN)
                assert status == 200, body
                drained = by_name(body)["scratch"]
                assert (drained["condition"], drained["runs"]) == ("draining", 1), drained

                # New runs all go to main while scratch drains.
                async with (
                    TermClient.connect_url(server.ws_url) as third,
                    TermClient.connect_url(server.ws_url) as fourth,
                ):
                    for term in (third, fourth):
                        assert (
                            run_engine(await start_waiting(term), server, scratch_engine) == "main"
                        )
                    for term in (third, fourth):
                        assert (await answer(term, "elsewhere"))["status"] == "exited"

                # The drained engine's idle boxes go; its live run is the one box left.
                async def only_the_live_run() -> bool:
                    return len(scratch_engine.containers(scratch_owner)) == 1

                await eventually(only_the_live_run, timeout_s=15, what="scratch's idle boxes go")
                # The live run on the drained engine goes on to its own end.
                ended = await answer(on["scratch"], "finished")
                assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended
                assert (await answer(on["main"], "too"))["status"] == "exited"

            async def drained_empty() -> bool:
                engines = by_name(await readiness(session, server))
                return engines["scratch"]["runs"] == 0 and not scratch_engine.containers(
                    scratch_owner
                )

            await eventually(drained_empty, timeout_s=15, what="the drained engine is empty")

            status, body = await admin(session, server, "scratch/resume", ADMIN_TOKEN)
            assert status == 200 and by_name(body)["scratch"]["condition"] == "ready", body
            await eventually(pools_full, timeout_s=60, what="scratch's pool refills", every_s=0.2)
    assert_nothing_left(server, scratch_engine)


async def test_sixty_students_through_nginx_land_on_both_replicas_and_both_engines(
    scratch_engine: ScratchEngine,
) -> None:
    with replicas_behind_nginx(
        2, CE_SANDBOX__ENGINES=engines_setting(scratch_engine), CE_POOL__ENABLED="false"
    ) as (url, servers):
        # Each student from an address of their own, as a class behind one proxy is not.
        ends = await asyncio.gather(
            *(greet(url, n, address=f"127.0.0.{10 + n}") for n in range(STUDENTS))
        )
        runs = [python_runs(server) for server in servers]
        placed = [placements(server) for server in servers]
        async with aiohttp.ClientSession() as session:
            states = [by_name(await readiness(session, server)) for server in servers]
    assert [(e["status"], e["exit_code"]) for e in ends] == [("exited", 0)] * STUDENTS, ends
    assert sum(runs) == STUDENTS and all(count > 0 for count in runs), runs
    on_engine = {engine: sum(p.get(engine, 0) for p in placed) for engine in ("main", "scratch")}
    assert sum(on_engine.values()) == STUDENTS and all(on_engine.values()), placed
    assert all(state["main"]["runs"] == state["scratch"]["runs"] == 0 for state in states)
    for server in servers:
        assert_nothing_left(server, scratch_engine)


async def test_an_engine_over_tcp_with_tls_client_certificates(
    scratch_engine: ScratchEngine, tmp_path: Path
) -> None:
    over_tls = {"name": "tls", "url": scratch_engine.tls_url, "tls": scratch_engine.tls()}
    with server_process(
        CE_SANDBOX__ENGINES=json.dumps([over_tls]), CE_POOL__ENABLED="false"
    ) as server:
        async with TermClient.connect_url(server.ws_url) as term:
            run_id = await start_waiting(term)
            assert any(run_id in name for name in scratch_engine.containers(f"{server.server_id}"))
            ended = await answer(term, "secure")
            assert (ended["status"], ended["exit_code"]) == ("exited", 0), ended
    # A client certificate the engine's CA did not sign: refused, and /readyz says why.
    stranger = _self_signed(tmp_path)
    with server_process(
        CE_SANDBOX__ENGINES=json.dumps([{**over_tls, "tls": {**over_tls["tls"], **stranger}}]),
        CE_POOL__ENABLED="false",
    ) as server:
        async with aiohttp.ClientSession() as session:

            async def refused() -> bool:
                return (await readiness(session, server))["status"] == 503

            await eventually(refused, timeout_s=15, what="the engine refuses the stranger")
            body = await readiness(session, server)
        engine = by_name(body)["tls"]
        assert engine["condition"] == "down" and "not reachable" in engine["reason"], body


def _self_signed(folder: Path) -> dict[str, str]:
    """A client certificate and key of a CA no engine trusts."""
    cert, key = folder / "stranger-cert.pem", folder / "stranger-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=stranger", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return {"cert": str(cert), "key": str(key)}
