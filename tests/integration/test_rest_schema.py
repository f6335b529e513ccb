"""Property-based API testing: schemathesis against the live server's own OpenAPI documents.

One document per REST surface: the native API's, and each compatibility
surface's own (whose refusals have that client's shape, never a 500).

The server runs as a separate process (schemathesis calls it synchronously)
with small limits, no warm pool and a rate limit, so however many bodies are
generated, few containers start and none lives long. Most generated bodies
are refused with a 400 (unknown language, limits above the small maxima);
every response must still be documented, match its schema, and none be 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from tests.integration.server_process import ServerProcess, server_process

_LIMITS = json.dumps(
    {
        "wall_ms": 2000,
        "idle_ms": 2000,
        "memory_mb": 64,
        "cpus": 0.5,
        "pids": 16,
        "output_bytes": 4096,
    }
)
_SERVER_ENV = {
    "CE_DEFAULTS": _LIMITS,
    "CE_MAXIMA": _LIMITS,
    "CE_POOL__ENABLED": "false",
    # At most this many containers a minute, whatever is generated (then 429).
    "CE_CAPACITY__RUNS_PER_MINUTE": "40",
    # Refusals are what is tested: their own budget must not cut them off.
    "CE_CAPACITY__REFUSALS_PER_MINUTE": "100000",
    "CE_SANDBOX__COMPILE_MS": "5000",
}
#: The OpenAPI document of each REST surface.
DOCUMENTS = ["/api/v1/openapi.json", "/codapi/openapi.json"]


@pytest.fixture(scope="module")
def live_server() -> Iterator[ServerProcess]:
    with server_process(**_SERVER_ENV) as server:
        yield server


@pytest.fixture(scope="module", params=DOCUMENTS)
def api_schema(live_server: ServerProcess, request: pytest.FixtureRequest) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}{request.param}")


def _conforms(case: schemathesis.Case, base_url: str) -> None:
    # Valid-by-schema bodies are mostly refused by the server's own rules
    # (unknown language, limits), which the schema cannot express.
    case.call_and_validate(base_url=base_url, excluded_checks=[positive_data_acceptance])


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_response_is_documented_and_none_is_a_server_error(
    api_schema: BaseSchema, live_server: ServerProcess, mode: GenerationMode
) -> None:
    for result in api_schema.get_all_operations():
        operation = result.ok()
        if not mode.is_positive and not operation.body:
            continue  # nothing to get wrong in a request without a body
        strategies = [operation.as_strategy(generation_mode=mode)]
        if mode.is_positive:
            strategies += api_schema.get_strategies_from_examples(operation)
        for strategy in strategies:

            @given(case=strategy)
            @settings(
                max_examples=30,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def conforms(case: schemathesis.Case) -> None:
                _conforms(case, live_server.url)

            conforms()
