"""schemathesis over every operation of an OpenAPI document, against a live server.

One loop for every surface: the native API, Piston, Judge0 and Codapi each
serve a document of their own; the tests differ only in the document and in
what a refusal must look like.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema

MAX_EXAMPLES = 30
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
#: The server schemathesis talks to: small limits, no warm pool and a rate
#: limit, so however many bodies are generated, few containers start and none
#: lives long; refusals are what is tested, so their own budget is out of the way.
SCHEMA_SERVER_ENV = {
    "CE_DEFAULTS": _LIMITS,
    "CE_MAXIMA": _LIMITS,
    "CE_POOL__ENABLED": "false",
    # At most this many containers a minute, whatever is generated (then 429).
    "CE_CAPACITY__RUNS_PER_MINUTE": "40",
    "CE_CAPACITY__REFUSALS_PER_MINUTE": "100000",
    "CE_SANDBOX__COMPILE_MS": "5000",
}


def every_operation_conforms(
    schema: BaseSchema,
    base_url: str,
    mode: GenerationMode,
    *,
    also: Callable[[Any], None] | None = None,
) -> None:
    """Each answer is documented and none is a server error; `also` checks more.

    Valid-by-schema bodies are mostly refused by rules a schema cannot state
    (an unknown language id, our limits), so a documented refusal is a right
    answer to them: `positive_data_acceptance` is left out.
    """
    for result in schema.get_all_operations():
        operation = result.ok()
        if not mode.is_positive and not operation.body:
            continue  # nothing to get wrong in a request without a body
        strategies = [operation.as_strategy(generation_mode=mode)]
        if mode.is_positive:
            strategies += schema.get_strategies_from_examples(operation)
        for strategy in strategies:

            @given(case=strategy)
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def conforms(case: schemathesis.Case) -> None:
                response = case.call_and_validate(
                    base_url=base_url, excluded_checks=[positive_data_acceptance]
                )
                if also is not None:
                    also(response)

            conforms()
