"""generate_orders' HTTP adapter refuses what is not a JSON request, or too much of one, before it reaches Kafka,
and says on ``GET /health`` whether its producer reaches the cluster."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import flask.testing
import functions_framework
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from devstack.services import free_port
from orders_core import bootstrap as runtime
from orders_core.config import Settings, get_settings
from orders_core.generator import producer

SOURCE = "functions/generate_orders/main.py"


class CountingProducer:
    """Kafka's producer as generate_orders uses it, acknowledging every order at once and keeping its key."""

    def __init__(self) -> None:
        self.produced: list[str] = []

    def produce(self, topic: str, value: bytes, key: str, on_delivery: Any) -> None:
        self.produced.append(key)
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


@pytest.fixture
def producer_seen(monkeypatch: pytest.MonkeyPatch) -> CountingProducer:
    fake = CountingProducer()
    monkeypatch.setattr(producer, "get_producer", lambda settings: fake)
    return fake


@pytest.fixture
def client() -> flask.testing.FlaskClient:
    get_settings.cache_clear()
    return functions_framework.create_app(target="http_entry", source=SOURCE).test_client()


def test_a_json_request_produces_what_it_asks_for(
    client: flask.testing.FlaskClient, producer_seen: CountingProducer
) -> None:
    """What the refusals below are measured against: the same producer sees a request that is taken."""
    response = client.post("/", json={"count": 3})
    assert response.status_code == 200 and response.get_json()["produced"] == 3
    assert len(producer_seen.produced) == 3


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
@pytest.mark.parametrize("body", [b"", b'{"count": 1}'])
def test_only_json_is_accepted(
    client: flask.testing.FlaskClient, producer_seen: CountingProducer, content_type: str | None, body: bytes
) -> None:
    """A web page can POST these (or an empty body) to any address without asking first."""
    response = client.post("/", data=body, content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["error"] == "unsupported_media_type"
    assert producer_seen.produced == []


@pytest.mark.parametrize("body", [b"not json", b"[1]", b"null", b"[" * 10_000, b"\xff", b'{"count": 100001}'])
def test_a_body_that_is_not_a_request_is_a_400(
    client: flask.testing.FlaskClient, producer_seen: CountingProducer, body: bytes
) -> None:
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert producer_seen.produced == []


def test_a_count_is_bounded_per_call(client: flask.testing.FlaskClient, producer_seen: CountingProducer) -> None:
    limit = Settings().generate_max_count
    response = client.post("/", json={"count": limit + 1})
    assert response.status_code == 400 and f"at most {limit}" in response.get_json()["message"]
    assert producer_seen.produced == []


@pytest.mark.parametrize(
    "environ",
    [
        {"CONTENT_LENGTH": str(1 << 30)},  # declared: refused before a byte is read
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True},  # counted while it is read
    ],
)
def test_a_body_over_the_limit_is_a_413(
    client: flask.testing.FlaskClient, producer_seen: CountingProducer, environ: dict[str, Any]
) -> None:
    body = b'{"count": 1, "schedule": "' + b"x" * Settings().generate_max_body_bytes + b'"}'
    response = client.post(
        "/", input_stream=io.BytesIO(body), content_type="application/json", environ_overrides=environ
    )
    assert response.status_code == 413 and response.get_json()["error"] == "payload_too_large"
    assert producer_seen.produced == []


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
