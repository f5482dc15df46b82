"""Hostile records through a redrive: a record with more headers than a letter once kept (and headers too large
for a letter) is redriven exactly as it was written, and a record the ingest keeps refusing is not redriven
forever. ingest_order runs in-process (the faults tier's client), Kafka and the dead letters are real."""

from __future__ import annotations

import json
import uuid
from typing import Any

import flask.testing
import pytest
from confluent_kafka import Producer

from orders_core import bootstrap as runtime
from orders_core.adapters.kafka_dlq import ensure_topics
from orders_core.adapters.kafka_event import build_event
from orders_core.config import Settings, get_settings
from orders_core.domain.ports import KafkaRecord
from orders_local import dlq_cli
from tests.support.topics import read_all

HEADERS = {
    # 40 headers, names repeated and empty, values empty and binary: a letter once kept 16, cut to 256 bytes.
    "forty small ones": [("h", b"1"), ("h", b"2"), ("", b""), ("bin", bytes(range(256)))]
    + [(f"x-{i}", f"{i}".encode() * 3) for i in range(36)],
    # Too large for a letter: the letter says so, and the redrive reads the record back from Kafka.
    "too large for a letter": [(f"big-{i}", bytes([i]) * 1500) for i in range(12)],
}


def as_record(message: Any) -> KafkaRecord:
    return KafkaRecord(
        message.topic(),
        message.partition(),
        message.offset(),
        message.timestamp()[1],
        message.key(),
        message.value(),
        tuple((n, v or b"") for n, v in message.headers() or []),
    )


def orders_dlq(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    runtime.reset()
    capsys.readouterr()
    assert dlq_cli.main(list(args)) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("orders-dlq: acting on ")
    answer: dict[str, Any] = json.loads(captured.out)
    return answer


@pytest.mark.parametrize("headers", HEADERS.values(), ids=HEADERS.keys())
def test_a_record_s_headers_come_back_byte_for_byte_and_a_record_refused_again_is_not_redriven_forever(
    client: flask.testing.FlaskClient,
    dead_letter_settings: Settings,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    headers: list[tuple[str, bytes]],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    runtime.reset()
    settings = get_settings()
    from devstack.stack import drain

    drain(settings)
    topic = f"hostile-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [(topic, 1, {})])
    # GIVEN a record the ingest refuses (not JSON), written to Kafka with hostile headers, and dead-lettered
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, value=b"not json \xff", key=b"k", headers=headers)
    assert producer.flush(30) == 0
    [written] = read_all(kafka_bootstrap, topic)
    answer = client.post("/", json=build_event([as_record(written)], kafka_bootstrap)).json
    assert answer["dead_lettered"] == 1
    # WHEN orders-dlq redrives it
    assert orders_dlq(capsys, "redrive")["redriven"] == 1
    # THEN the topic holds a copy with the same key, value and headers, byte for byte, in order
    original, copy = read_all(kafka_bootstrap, topic)
    assert (copy.key(), copy.value(), copy.headers()) == (original.key(), original.value(), original.headers())
    # AND WHEN the ingest refuses the copy again THEN its letter counts one redrive, and a run allowing one
    # redrive leaves it alone
    assert client.post("/", json=build_event([as_record(copy)], kafka_bootstrap)).json["dead_lettered"] == 1
    left = orders_dlq(capsys, "redrive", "--max-redrives", "1")
    assert left["redriven"] == 0 and "redriven 1 times already" in left["skipped"][f"{topic}-0@1"]
    assert len(read_all(kafka_bootstrap, topic)) == 2
    drain(settings)
