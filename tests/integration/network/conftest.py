"""The suite's own destinations on an "upstream" network only the proxy joins.

`upstream` starts one container (the runtime image's Python serving
`upstream_server.py`) on an internal Docker network of its own, reachable
under the test names below: nothing a test does leaves this machine. It
serves a page over HTTP and HTTPS (a certificate made here for
`allowed.test`, whose CA the runs get as a file), a pip index holding one
small wheel, and a 10 MiB download.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import MakeClient

UPSTREAM_NAMES = ("allowed.test", "other.test", "index.test", "a.wild.test")
PAGE = "hello from upstream"
WHEEL = "tinypkg-1.0-py3-none-any.whl"
#: The allowlist of the tests' policies: two ports of one host, the index, a wildcard.
WEB_POLICY = ["allowed.test:8000", "allowed.test:8443", "index.test:8000", "*.wild.test:8000"]
VIP_TOKEN = "vip-token-for-tests"
_SERVER = Path(__file__).with_name("upstream_server.py")


@dataclass(frozen=True)
class Upstream:
    network: str
    ip: str
    ca_pem: str


def _docker(*argv: str) -> str:
    return subprocess.run(
        ["docker", *argv], check=True, capture_output=True, text=True
    ).stdout.strip()


def _wheel(path: Path) -> None:
    files = {
        "tinypkg/__init__.py": b"HELLO = 'tinypkg imported'\n",
        "tinypkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("tinypkg-1.0.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tinypkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")


def _site(root: Path) -> str:
    """The served folder and the TLS certificate; returns the certificate (its own CA)."""
    www = root / "www"
    (www / "simple" / "tinypkg").mkdir(parents=True)
    (www / "packages").mkdir()
    (www / "index.html").write_text(PAGE)
    _wheel(www / "packages" / WHEEL)
    (www / "simple" / "tinypkg" / "index.html").write_text(
        f'<html><body><a href="../../packages/{WHEEL}">{WHEEL}</a></body></html>'
    )
    tls = root / "tls"
    tls.mkdir()
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=allowed.test", "-addext", "subjectAltName=DNS:allowed.test",
            "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    shutil.copy(_SERVER, root / "upstream_server.py")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return (tls / "cert.pem").read_text()


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    """The destinations, up for the whole session; removed at its end."""
    name = f"ce-test-upstream-{os.getpid()}"
    root = Path(tempfile.mkdtemp(prefix="ce-upstream-", dir="/var/tmp"))
    image = os.environ.get("CE_SANDBOX__IMAGE", "code-executor-runtime")
    try:
        ca_pem = _site(root)
        _docker("network", "create", "--internal", "--label", "ce.test=upstream", name)
        aliases = [arg for alias in UPSTREAM_NAMES for arg in ("--network-alias", alias)]
        _docker(
            "run", "-d", "--name", name, "--network", name, *aliases,
            "--read-only", "--user", "65534:65534", "--cap-drop", "ALL",
            "--memory", "256m", "--pids-limit", "64", "--label", "ce.test=upstream",
            "-v", f"{root}:/srv:ro", image, "python3", "/srv/upstream_server.py", "/srv",
        )  # fmt: skip
        ip = _docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name
        )
        yield Upstream(network=name, ip=ip, ca_pem=ca_pem)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        _remove_network(name)
        shutil.rmtree(root, ignore_errors=True)


def _remove_network(name: str) -> None:
    """Remove the upstream network (whatever is still on it is the leak guard's to report)."""
    members = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{range $id, $_ := .Containers}}{{$id}} {{end}}", name],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for member in members:
        subprocess.run(["docker", "network", "disconnect", "-f", name, member], check=False)
    subprocess.run(["docker", "network", "rm", name], capture_output=True, check=True)


def network_settings(upstream: Upstream, **more: Any) -> dict[str, Any]:
    """The `network` settings group of a test server: the web policy and a token-only one."""
    return {
        "policies": {
            "web": WEB_POLICY,
            "vip": {"destinations": ["allowed.test:8000"], "tokens": [VIP_TOKEN]},
        },
        "egress_network": upstream.network,
        **more,
    }


@pytest.fixture
def make_networked(make_client: MakeClient, upstream: Upstream) -> MakeClient:
    """A test server with the network policies (the warm pool off unless asked)."""

    async def make(**overrides: Any) -> Any:
        overrides.setdefault("pool", {"enabled": False})
        return await make_client(network=network_settings(upstream), **overrides)

    return make
