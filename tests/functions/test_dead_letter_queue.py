"""DeadLetterQueue against real SQS servers: moto (the tests' endpoint) and ElasticMQ (make up's)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import services
from orders_core.adapters.sqs import DeadLetterQueue, ensure_queue, make_sqs_client
from orders_core.config import Settings
from orders_core.domain.ports import DeadLetter


@pytest.fixture(params=["moto", "elasticmq"])
def queue_settings(request: pytest.FixtureRequest, work_dir: Path) -> Iterator[Settings]:
    """A fresh queue on either server."""
    if request.param == "moto":
        port = request.getfixturevalue("aws").port
        endpoint = None
    else:
        folder = work_dir / f"sqs-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        endpoint = services.sqs(folder).start()
        port = endpoint.port
    settings = Settings(aws_endpoint_url=f"http://127.0.0.1:{port}", dlq_queue_name=f"dlq-{uuid.uuid4().hex[:8]}")
    ensure_queue(settings)
    yield settings
    if endpoint is not None:
        endpoint.stop()


def test_large_letters_sent_together_all_reach_the_queue(queue_settings: Settings) -> None:
    # GIVEN five refused records of 200 KB each: every letter fits one SQS message, but the five together are
    # over the 1 MiB that SQS takes in one SendMessageBatch
    letters = [DeadLetter("not_json", "bad", "orders", 0, offset, b"k", b"x" * 200_000) for offset in range(5)]
    # WHEN the ingest sends them in one call
    DeadLetterQueue(queue_settings).send(letters)
    # THEN every letter is on the queue
    client = make_sqs_client(queue_settings)
    url = client.get_queue_url(QueueName=queue_settings.dlq_queue_name)["QueueUrl"]
    offsets: set[int] = set()

    def all_received() -> bool:
        answer = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
        offsets.update(json.loads(message["Body"])["offset"] for message in answer.get("Messages", []))
        return len(offsets) == 5

    services.wait_until(all_received, 30, "five dead letters", interval=0.2)
