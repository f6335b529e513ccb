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

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

from ce_ws.api.app import create_app
from ce_ws.api.guards import WEBSOCKET_ROUTE
from ce_ws.config import Settings
from tests.integration.schema_checks import SCHEMA_SERVER_ENV, every_operation_conforms
from tests.integration.server_process import ServerProcess, server_process

#: The OpenAPI document of each REST surface.
DOCUMENTS = ["/api/v1/openapi.json", "/codapi/openapi.json"]


@pytest.fixture(scope="module")
def live_server() -> Iterator[ServerProcess]:
    with server_process(**SCHEMA_SERVER_ENV) as server:
        yield server


@pytest.fixture(scope="module", params=DOCUMENTS)
def api_schema(live_server: ServerProcess, request: pytest.FixtureRequest) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}{request.param}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_response_is_documented_and_none_is_a_server_error(
    api_schema: BaseSchema, live_server: ServerProcess, mode: GenerationMode
) -> None:
    every_operation_conforms(api_schema, live_server.url, mode)


#: Routes no OpenAPI document describes, and why.
UNDOCUMENTED = {
    "/": "the playground page (HTML)",
    "/static": "the page's assets",
    "/watch/{room}": "a room's watch page (HTML)",
    "/replay/{recording}": "a recording's replay page (HTML)",
    "/embed.js": "the snippet widget's script (JavaScript, not REST)",
    "/embed/{name}": "the widget's lazily loaded chunks",
    # A compatibility surface's document leaves itself out, as its original has none.
    "/piston/openapi.json": "the Piston document itself",
    "/judge0/openapi.json": "the Judge0 document itself",
}


def test_every_rest_route_is_in_a_document(live_server: ServerProcess) -> None:
    """A new REST surface (or route) cannot escape the schemathesis runs above.

    WebSockets are fuzzed in test_ws_fuzz.py; catch-alls answer each surface's 404.
    """
    documented: set[tuple[str, str]] = set()
    for path in [*DOCUMENTS, "/piston/openapi.json", "/judge0/openapi.json"]:
        document = httpx.get(f"{live_server.url}{path}").json()
        documented |= {
            (method.upper(), route) for route, ops in document["paths"].items() for method in ops
        }
    routes = create_app(Settings(server_id="routes-only")).router.routes()
    served = {
        (route.method, route.resource.canonical)
        for route in routes
        if route.resource is not None
        and route.method not in {"HEAD", "*"}
        and not (route.name or "").startswith(WEBSOCKET_ROUTE)
        and not route.resource.canonical.endswith("/")  # Piston's trailing-slash aliases
    }
    missing = {(m, p) for m, p in served - documented if p not in UNDOCUMENTED}
    assert not missing, f"routes no OpenAPI document describes: {sorted(missing)}"
