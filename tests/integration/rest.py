"""Helpers for REST tests: post an `execute`, read its JSON."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

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
