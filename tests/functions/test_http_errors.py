"""Every function answers errors the same way: JSON a person can read, and a 405 that says what is allowed."""

from __future__ import annotations

import functions_framework
import pytest

from devstack import ROOT

ALLOWED = {"get_order": "GET, HEAD, OPTIONS", "ingest_order": "POST", "generate_orders": "POST"}


@pytest.mark.parametrize(
    ("function", "method"), [("get_order", "POST"), ("ingest_order", "GET"), ("generate_orders", "PUT")]
)
def test_a_wrong_method_is_a_json_405_with_allow(function: str, method: str) -> None:
    source = ROOT / "functions" / function / "main.py"
    client = functions_framework.create_app(target="http_entry", source=str(source)).test_client()
    response = client.open("/orders/abc" if function == "get_order" else "/", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == ALLOWED[function]
    assert response.json["error"] == "method_not_allowed" and method in response.json["message"]
