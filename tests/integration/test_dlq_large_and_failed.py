"""orders-dlq on a large local queue (ElasticMQ, as `make up` runs it) whose letters come back into view while a
run reads it, and on the platform's on-failure objects in S3 (moto)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from confluent_kafka import Producer

from devstack import services
from orders_core import bootstrap as runtime
from orders_core.adapters.kafka_dlq import ensure_topics
from orders_core.adapters.kafka_event import build_event
from orders_core.adapters.letters import encode_letter
from orders_core.adapters.sqs import ensure_queue
from orders_core.config import get_settings
from orders_core.domain.ports import DeadLetter, KafkaRecord
from orders_local import dlq_cli
from orders_local.dlq_cli import s3_client
from tests.support.topics import topic_values

LETTERS = 4_000  # a run of many pages: letters held 1 s come back into view while it reads


def run_dlq(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> dict[str, Any]:
    runtime.reset()
    capsys.readouterr()
    assert dlq_cli.main(list(args)) == code
    answer: dict[str, Any] = json.loads(capsys.readouterr().out)
    return answer


@pytest.fixture
def elasticmq(work_dir: Path, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str) -> Iterator[str]:
    """A fresh ElasticMQ with the dead-letter queue, and the environment of orders-dlq pointing at it."""
    folder = work_dir / f"sqs-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    endpoint = services.sqs(folder).start()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{endpoint.port}",
        "DLQ_QUEUE_NAME": "orders-dlq",
        "DEAD_LETTER_SINK": "sqs",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    ensure_queue(get_settings())
    yield f"http://127.0.0.1:{endpoint.port}"
    endpoint.stop()
    runtime.reset()


def test_thousands_of_letters_coming_back_into_view_are_counted_and_redriven_once_each(
    elasticmq: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN 4,000 records of a topic of its own, and their 4,000 letters on the local queue
    settings = get_settings()
    topic = f"redrive-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [(topic, 1, {})])
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "linger.ms": 20})
    for offset in range(LETTERS):
        producer.produce(topic, f"v{offset}".encode(), b"k")
    assert producer.flush(60) == 0
    # Patient and without retries: a retried send after a slow answer would put a letter on the queue twice.
    sqs = boto3.session.Session(region_name=settings.aws_region).client(
        "sqs", endpoint_url=elasticmq, config=Config(read_timeout=120, retries={"total_max_attempts": 1})
    )
    url = sqs.get_queue_url(QueueName=settings.dlq_queue_name)["QueueUrl"]
    bodies = [
        encode_letter(DeadLetter("invalid", "m", topic, 0, offset, b"k", f"v{offset}".encode()))
        for offset in range(LETTERS)
    ]

    def send(start: int) -> None:
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(0, LETTERS, 10)))
    # WHEN stats and then a redrive read it, holding each letter only 1 s, so that letters come back into view
    # while they run
    stats = run_dlq(capsys, "--hold-s", "1", "stats")
    report = run_dlq(capsys, "--hold-s", "1", "redrive")
    # THEN stats counted each letter once, the redrive produced each record once more, and deleted every letter
    assert stats["letters"] == LETTERS
    assert (report["redriven"], report["duplicates"], report["failed"], report["not_deleted"]) == (LETTERS, 0, {}, [])
    values = Counter(topic_values(kafka_bootstrap, topic))
    assert len(values) == LETTERS and set(values.values()) == {2}  # as written, and redriven once
    assert run_dlq(capsys, "stats")["letters"] == 0


def on_failure_object(records: list[KafkaRecord], bootstrap: str) -> dict[str, Any]:
    """What the platform writes to an S3 on-failure destination for a Kafka batch: the invocation's metadata and,
    for S3, the whole invocation (the event) as ``payload``."""
    first = records[0]
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": "arn:aws:lambda:us-east-1:0:function:f",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-12-04T12:00:00.000Z",
        "KafkaBatchInfo": {
            "batchSize": len(records),
            "topic": first.topic,
            "partition": first.partition,
            "offset": first.offset,
            "bootstrapServers": bootstrap,
        },
        "payload": build_event(records, bootstrap),
    }


def test_the_platform_s_failed_batches_in_s3_are_replayed_exactly_once_and_their_objects_deleted_after(
    stack_env: dict[str, str],
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    runtime.reset()
    settings = get_settings()
    topic, bucket = f"failed-{uuid.uuid4().hex[:8]}", f"failures-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [(topic, 1, {})])
    s3 = s3_client(settings)
    s3.create_bucket(Bucket=bucket)
    # GIVEN two batches the platform gave up on, their records with headers, in the on-failure bucket
    records = [
        KafkaRecord(
            topic,
            0,
            offset,
            1000 + offset,
            b"key",
            f"order {offset}".encode(),
            (("trace", bytes([offset])), ("trace", b"again")),
        )
        for offset in range(6)
    ]
    for name, batch in (("a", records[:4]), ("b", records[4:])):
        s3.put_object(Bucket=bucket, Key=f"aws/lambda/{name}", Body=json.dumps(on_failure_object(batch, "x")))
    s3.put_object(Bucket=bucket, Key="aws/lambda/not-ours", Body=b"{}")
    # WHEN orders-dlq replays them (a dry run first), twice
    assert run_dlq(capsys, "replay-failed", "--bucket", bucket, "--dry-run")["replayed"] == 6
    first = run_dlq(capsys, "replay-failed", "--bucket", bucket, "--prefix", "aws/lambda/")
    second = run_dlq(capsys, "replay-failed", "--bucket", bucket)
    # THEN each record is on the topic once, as it was; the replayed objects are gone, the foreign one stays
    assert first["replayed"] == 6 and sorted(first["deleted"]) == ["aws/lambda/a", "aws/lambda/b"]
    assert "aws/lambda/not-ours" in first["kept"] and second["replayed"] == 0
    assert topic_values(kafka_bootstrap, topic) == [record.value for record in records]
    left = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert left == ["aws/lambda/not-ours"]
