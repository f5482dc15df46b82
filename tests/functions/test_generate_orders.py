"""generate_orders' HTTP adapter refuses what is not a JSON request before it reaches Kafka, and says on
``GET /health`` whether its producer reaches the cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import flask.testing
import functions_framework
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.services import free_port
from orders_core import bootstrap as runtime

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


@pytest.fixture
def kafka_topic(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A topic of its own on the test broker, named in the settings."""
    topic = f"test-health-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC", topic)
    runtime.reset()
    yield topic
    admin.delete_topics([topic])[topic].result(30)
    runtime.reset()


def test_health_is_ok_while_the_producer_reaches_the_cluster_and_the_topic(
    client: flask.testing.FlaskClient, kafka_topic: str
) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "kafka": "ok"}
    assert client.head("/health").status_code == 200


@pytest.mark.parametrize("broken", ["topic", "broker"])
def test_health_is_503_without_the_topic_or_the_broker(
    client: flask.testing.FlaskClient, kafka_topic: str, monkeypatch: pytest.MonkeyPatch, broken: str
) -> None:
    """The answer names the dependency, never the host or the client's error (those go to the log)."""
    if broken == "topic":
        monkeypatch.setenv("KAFKA_TOPIC", "no-such-topic-" + uuid.uuid4().hex[:8])
    else:
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    runtime.reset()
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "kafka": "unreachable"}
