"""The lookup API's description is valid OpenAPI 3.1 and describes what the service really sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from orders_core.http.openapi import openapi_document

SAMPLE = json.loads((Path(__file__).parents[1] / "fixtures" / "order.json").read_text())


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document(100)


def schema_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema with every other component alongside, so its $refs resolve."""
    return {**document["components"]["schemas"][name], "components": document["components"]}


def test_the_description_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")


def test_the_sample_order_matches_the_order_schema_and_a_changed_one_does_not(document: dict[str, Any]) -> None:
    schema = schema_of(document, "Order")
    jsonschema.validate(SAMPLE, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**SAMPLE, "unexpected": 1}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**SAMPLE, "order_uid": "no spaces allowed"}, schema)


def test_every_status_of_an_order_lookup_is_described(document: dict[str, Any]) -> None:
    responses = document["paths"]["/orders/{order_uid}"]["get"]["responses"]
    assert set(responses) == {"200", "304", "400", "404", "503"}
    assert "Retry-After" in responses["503"]["headers"]


def test_the_list_limit_follows_the_setting() -> None:
    [limit] = openapi_document(7)["paths"]["/orders"]["get"]["parameters"]
    assert limit["schema"]["maximum"] == 7
