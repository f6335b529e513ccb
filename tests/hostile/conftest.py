"""Fixtures of the hostile-program corpus: one server per runtime, a harness.

Every test here runs on runc and on runsc (gVisor): the `runtime` fixture is
parametrized, never skipped. Expected outcomes that differ because gVisor's
kernel differs are written out per runtime in the tests themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hostile.harness import Corpus
from tests.integration.conftest import MakeClient
from tests.integration.conftest import make_client as make_client  # the corpus's fixtures
from tests.integration.conftest import no_leak_after_test as no_leak_after_test
from tests.integration.server_process import ServerProcess, server_process

RUNTIMES = ("runc", "runsc")


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    """The OCI runtime of the server under attack."""
    name: str = request.param
    return name


@pytest.fixture
async def corpus(make_client: MakeClient, runtime: str) -> Corpus:
    """A server on `runtime` and the harness that attacks it."""
    return await make_corpus(make_client, runtime)


async def make_corpus(make: MakeClient, runtime: str, **overrides: Any) -> Corpus:
    """A harness over a fresh server with these setting overrides."""
    sandbox = {"runtime": runtime, **overrides.pop("sandbox", {})}
    client = await make(sandbox=sandbox, **overrides)
    return Corpus.of_client(client, runtime)


@pytest.fixture(params=RUNTIMES)
def separate_server(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, str]]:
    """A server in a process of its own (to measure its memory), per runtime.

    One per test, never beside another server of this suite: servers sharing
    an owner label reap each other's containers. No warm pool, so the test's
    run is the server's only container.
    """
    runtime: str = request.param
    with server_process(CE_SANDBOX__RUNTIME=runtime, CE_POOL__ENABLED="false") as server:
        yield server, runtime
