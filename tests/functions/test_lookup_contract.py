"""The running lookup API (as `make up` runs it) answers as its OpenAPI description says, for generated requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from devstack import ROOT


@pytest.fixture(scope="module")
def lookup_schema(get_order_url: str, seed_orders: Any) -> schemathesis.BaseSchema:
    # The description's example uid is the sample order's: stored, so the 200 answer is exercised too.
    seed_orders([json.loads((ROOT / "tests" / "fixtures" / "order.json").read_text())])
    return schemathesis.openapi.from_url(f"{get_order_url}/openapi.json")


def test_the_served_description_is_valid_openapi_3_1(get_order_url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{get_order_url}/openapi.json", timeout=10) as answer:
        document: dict[str, Any] = json.load(answer)
    validate(document)


def test_every_answer_is_one_the_description_lists(lookup_schema: schemathesis.BaseSchema) -> None:
    # Generated requests per operation (and its examples); each answer's status, headers and body must be
    # ones the description lists for it. (Driven by hypothesis directly: schemathesis' pytest plugin does not
    # load under this pytest.)
    for found in lookup_schema.get_all_operations():
        operation = found.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers_as_described(case: schemathesis.Case) -> None:
            case.call_and_validate()

        answers_as_described()
