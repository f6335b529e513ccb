"""The OpenAPI document comes from the models that validate requests."""

from __future__ import annotations

from ce_ws.openapi import openapi_document
from ce_ws.protocol import ExecuteRequest, ExecuteResponse, LimitRequest, SourceFile


def test_schemas_are_the_models_own() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for model in (ExecuteRequest, ExecuteResponse, LimitRequest, SourceFile):
        assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)
    language = schemas["ExecuteRequest"]["properties"]["language"]
    assert (language["minLength"], language["maxLength"]) == (1, 64)
    assert schemas["ExecuteRequest"]["required"] == ["language"]


def test_every_reference_resolves() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [ref for value in node.values() for ref in refs(value)]
        if isinstance(node, list):
            return [ref for value in node for ref in refs(value)]
        return []

    for ref in refs(document):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas


def test_execute_documents_every_refusal_status() -> None:
    responses = openapi_document()["paths"]["/api/v1/execute"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "408", "413", "415", "429", "503"}
    assert "Retry-After" in responses["503"]["headers"]
