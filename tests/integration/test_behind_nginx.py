"""Replicas behind a real nginx, configured by the shipped `deploy/nginx/code-executor.conf`.

WebSockets pass through it both ways (a program's prompt out, its answer in),
new sessions spread over the replicas, and each replica knows a client by its
own address, which nginx appends to `X-Forwarded-For`: a client cannot choose
another by sending that header itself.
"""

from __future__ import annotations

import asyncio

from tests.integration.balancer import (
    client_from,
    greet,
    python_runs,
    replicas_behind_nginx,
    status_from,
)

SESSIONS = 8
WAITING = "echo up; read line"
#: This machine's own address, and a client's.
LOCAL = ("127.0.0.1", "127.0.0.2")


async def test_interactive_sessions_through_nginx_spread_over_both_replicas() -> None:
    with replicas_behind_nginx(2) as (url, servers):
        ends = await asyncio.gather(*(greet(url, n) for n in range(SESSIONS)))
        runs = [python_runs(server) for server in servers]
    assert [(end["status"], end["exit_code"]) for end in ends] == [("exited", 0)] * SESSIONS, ends
    assert sum(runs) == SESSIONS, runs
    assert all(count > 0 for count in runs), f"nginx sent every session to one replica: {runs}"


async def test_through_nginx_a_client_is_its_own_address_whatever_it_claims() -> None:
    # One replica (the caps are per replica without shared state), one run per client.
    with replicas_behind_nginx(1, CE_CAPACITY__MAX_RUNS_PER_CLIENT="1") as (url, _):
        async with (
            client_from("127.0.0.2", url) as first,
            client_from("127.0.0.2", url, **{"X-Forwarded-For": "203.0.113.7"}) as forger,
            client_from("127.0.0.3", url) as neighbour,
        ):
            answers = []
            for term in (first, forger, neighbour):
                await term.send(type="run", language="bash", code=WAITING)
                answers.append((await term.next_message("started", "queued", "error"))["type"])
            # Queued runs go first (they never started: no `exit`), then the others.
            ended = sorted(
                zip(answers, (first, forger, neighbour), strict=True),
                key=lambda end: end[0] != "queued",
            )
            for answer, term in ended:
                await term.send(type="kill")
                if answer == "started":
                    await term.wait_exit()
        metrics = {address: await status_from(address, f"{url}/metrics") for address in LOCAL}
    # The forger is 127.0.0.2 again, so it waits behind the first run; the
    # neighbour at 127.0.0.3 is another client and starts at once.
    assert answers == ["started", "queued", "started"], answers
    assert metrics == {"127.0.0.1": 200, "127.0.0.2": 403}, "metrics are for this machine only"
