"""Helpers for REST tests: post an `execute`, read its JSON; read `/metrics`."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

EXECUTE = "/api/v1/execute"


async def execute(client: TestClient[Any, Any], **body: Any) -> dict[str, Any]:
    """POST /api/v1/execute and return the 200 body."""
    response = await client.post(EXECUTE, json=body)
    result: dict[str, Any] = await response.json()
    assert response.status == 200, result
    return result


async def refusal(
    client: TestClient[Any, Any], status: int, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    """POST /api/v1/execute, expect `status`, return the `error` object."""
    response = await client.post(EXECUTE, json=body, headers=headers)
    result: dict[str, Any] = await response.json()
    assert response.status == status, result
    assert set(result) == {"error"}, result
    return dict(result["error"])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Prometheus text as {(name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def metrics(client: TestClient[Any, Any]) -> Samples:
    """The server's `/metrics`, parsed."""
    return parse_metrics(await (await client.get("/metrics")).text())


def named(samples: Samples, name: str) -> list[float]:
    """Every sample of one metric, whatever its labels (none yet: an empty list)."""
    return [value for (sample, _), value in samples.items() if sample == name]


def metric(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; a sample that is absent fails the test (it is not 0)."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        known = sorted({sample for sample, _ in samples if sample.startswith(name[:12])})
        raise AssertionError(f"no sample {name}{labels or ''} in /metrics (near: {known})")
    return samples[key]
