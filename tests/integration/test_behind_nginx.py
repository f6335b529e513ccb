"""Replicas behind a real nginx, configured by the shipped `deploy/nginx/code-executor.conf`.

WebSockets pass through it both ways (a program's prompt out, its answer in),
new sessions spread over the replicas, and each replica knows a client by its
own address, which nginx appends to `X-Forwarded-For`: a client cannot choose
another by sending that header itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.request
from collections.abc import AsyncIterator, Iterator

import aiohttp

from tests.integration.balancer import nginx_in_front
from tests.integration.server_process import ServerProcess, server_process
from tests.integration.terminal import TermClient

SESSIONS = 8
GREETER = 'name = input("name? ")\nprint(f"hello, {name}!")\n'
WAITING = "echo up; read line"
# nginx and the replicas all listen on 127.0.0.1; clients come from other loopback addresses.
NGINX_ADDRESS = "127.0.0.1/32"
#: This machine's own address, and a client's.
LOCAL = ("127.0.0.1", "127.0.0.2")
_RUNS = re.compile(r'^ce_runs_total\{language="python",status="exited"\} (\S+)$', re.M)


@contextlib.contextmanager
def replicas_behind_nginx(count: int, **env: str) -> Iterator[tuple[str, list[ServerProcess]]]:
    """`count` server replicas that trust nginx's address, and nginx in front of them."""
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(server_process(CE_TRUSTED_PROXIES=f'["{NGINX_ADDRESS}"]', **env))
            for _ in range(count)
        ]
        url = stack.enter_context(nginx_in_front([server.port for server in servers]))
        yield url, servers


@contextlib.asynccontextmanager
async def client_from(address: str, url: str, **headers: str) -> AsyncIterator[TermClient]:
    """A socket through nginx from loopback address `address`, with no cookie."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with (
        aiohttp.ClientSession(connector=connector, headers=headers) as session,
        session.ws_connect(f"{url.replace('http', 'ws', 1)}/api/v1/ws") as ws,
    ):
        term = TermClient(ws)
        term.hello = await term.next_message("hello")
        yield term


async def status_from(address: str, url: str) -> int:
    """The HTTP status of a GET of `url` from loopback address `address`."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as response:
        return response.status


def python_runs(server: ServerProcess) -> float:
    """Python runs that exited, as the replica's own /metrics counts them."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as response:
        found = _RUNS.search(response.read().decode())
    return float(found.group(1)) if found else 0.0


async def greet(url: str, n: int) -> dict[str, object]:
    """One session through nginx: the program asks, the client answers, the program greets."""
    async with client_from("127.0.0.2", url) as term:
        started = await term.run("python", GREETER)
        assert started["type"] == "started", started
        await term.expect(b"name? ")
        await term.keys(f"student {n}\r")
        await term.expect(f"hello, student {n}!".encode())
        return await term.wait_exit()


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
