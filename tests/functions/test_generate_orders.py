"""generate_orders' HTTP adapter refuses what is not a JSON request before it reaches Kafka."""

from __future__ import annotations

import flask.testing
import functions_framework
import pytest

SOURCE = "functions/generate_orders/main.py"


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source=SOURCE).test_client()


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
@pytest.mark.parametrize("body", [b"", b'{"count": 1}'])
def test_only_json_is_accepted(client: flask.testing.FlaskClient, content_type: str | None, body: bytes) -> None:
    """A web page can POST these (or an empty body) to any address without asking first."""
    response = client.post("/", data=body, content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"null", b"[" * 100_000, b"\xff"])
def test_a_body_that_is_not_a_json_object_is_a_400(client: flask.testing.FlaskClient, body: bytes) -> None:
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
