"""A real nginx in front of server replicas, configured by `deploy/nginx/code-executor.conf`.

The shipped file is used as it is, apart from the addresses: its upstream
`server` lines become the replicas' ports and its `listen` a loopback port.
nginx runs in the foreground under a scratch prefix (its pid, logs and temp
folders), so nothing of it outlives the test.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp

from tests.helpers import free_port, wait_healthy
from tests.integration.server_process import ServerProcess, server_process
from tests.integration.terminal import TermClient

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "code-executor.conf"
NGINX = Path("/usr/sbin/nginx")
_UPSTREAM_SERVER = re.compile(r"^(\s*)server 127\.0\.0\.1:\d+ (.*);\n", re.MULTILINE)
_START_TIMEOUT_S = 10.0
GREETER = 'name = input("name? ")\nprint(f"hello, {name}!")\n'
# nginx and the replicas all listen on 127.0.0.1; clients come from other loopback addresses.
NGINX_ADDRESS = "127.0.0.1/32"
_RUNS = re.compile(r'^ce_runs_total\{language="python",status="exited"\} (\S+)$', re.M)

_MAIN = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/code-executor.conf;
}}
"""


def site_for(replica_ports: list[int], listen_port: int) -> str:
    """The shipped site, its upstream and its listen address pointed at this test's."""
    site = SITE.read_text()
    servers = _UPSTREAM_SERVER.findall(site)
    assert servers, f"{SITE} has no upstream `server 127.0.0.1:PORT ...;` lines"
    indent, options = servers[0]
    lines = "".join(f"{indent}server 127.0.0.1:{port} {options};\n" for port in replica_ports)
    # The first line becomes this test's replicas, the others go.
    site = _UPSTREAM_SERVER.sub(lambda _: "\0", site).replace("\0", lines, 1).replace("\0", "")
    site, count = re.subn(
        r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{listen_port};", site, flags=re.M
    )
    assert count == 1, f"{SITE} has no `listen 80;`"
    return site


@contextlib.contextmanager
def nginx_in_front(replica_ports: list[int]) -> Iterator[str]:
    """nginx balancing over the replicas on `replica_ports`; yields its base URL."""
    assert NGINX.exists(), (
        f"{NGINX} is missing: run `make deploy-checks` (or apt-get install nginx)"
    )
    prefix = Path(tempfile.mkdtemp(prefix="nginx-ce-test-"))
    prefix.chmod(0o755)  # its workers run as nobody
    port = free_port()
    (prefix / "code-executor.conf").write_text(site_for(replica_ports, port))
    (prefix / "nginx.conf").write_text(_MAIN.format(prefix=prefix))
    command = [str(NGINX), "-p", str(prefix), "-e", str(prefix / "error.log"),
               "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"]  # fmt: skip
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, f"nginx refused the shipped site:\n{checked.stderr}"
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        try:  # healthy through nginx: it listens and reaches a replica
            wait_healthy(url, exit_code=process.poll, timeout_s=_START_TIMEOUT_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; nginx's log:\n{_log(prefix)}") from None
        yield url
    finally:
        process.terminate()  # nginx: fast shutdown
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(prefix, ignore_errors=True)


def _log(prefix: Path) -> str:
    log = prefix / "error.log"
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(none)"


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


async def greet(url: str, n: int, address: str = "127.0.0.2") -> dict[str, object]:
    """One session through nginx: the program asks, the client answers, the program greets."""
    async with client_from(address, url) as term:
        started = await term.run("python", GREETER)
        assert started["type"] == "started", started
        await term.expect(b"name? ")
        await term.keys(f"student {n}\r")
        await term.expect(f"hello, student {n}!".encode())
        return await term.wait_exit()
