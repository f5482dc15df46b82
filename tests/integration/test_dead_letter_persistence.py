"""Dead letters survive restarts of the local SQS endpoint that `make up` runs (ElasticMQ, infra/native/sqs.sh).

Fault tests: the endpoint is a real process on its own data folder, stopped with SIGKILL or SIGTERM by the test
and started again on the same folder; what must hold is that every letter SQS acknowledged is receivable after
the restart, with its content, and that a letter deleted before the restart stays deleted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import services
from orders_core.adapters.letters import encode_letter
from orders_core.adapters.sqs import DeadLetterQueue, ensure_queue, make_sqs_client
from orders_core.config import Settings
from orders_core.domain.ports import DeadLetter


@pytest.fixture
def endpoint(work_dir: Path) -> Iterator[services.Service]:
    """A fresh endpoint with its own data folder, as `make up` starts it."""
    folder = work_dir / f"sqs-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    service = services.sqs(folder).start()
    yield service
    service.stop()


@pytest.fixture
def settings(endpoint: services.Service) -> Settings:
    """Settings against the endpoint, its queue made as orders-setup makes it."""
    settings = Settings(aws_endpoint_url=f"http://127.0.0.1:{endpoint.port}", dlq_queue_name="orders-dlq")
    ensure_queue(settings)
    return settings


def letters(count: int) -> list[DeadLetter]:
    return [
        DeadLetter("invalid", f"refused {offset}", "orders", offset % 3, offset, b"key", f"value {offset}".encode())
        for offset in range(count)
    ]


class Reader:
    """Reads the queue as an operator would, through the service's own client."""

    def __init__(self, settings: Settings) -> None:
        self.client = make_sqs_client(settings)
        self.url = self.client.get_queue_url(QueueName=settings.dlq_queue_name)["QueueUrl"]

    def receive(self, seen: dict[int, dict[str, Any]], most: int, delete: bool) -> None:
        """Receive up to ``most`` visible letters (hiding them for a minute) into ``seen``, by Kafka offset."""
        answer = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=most, VisibilityTimeout=60)
        for message in answer.get("Messages", []):
            body = json.loads(message["Body"])
            seen[body["offset"]] = body
            if delete:
                self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def receive_until(self, count: int, delete: bool = False) -> dict[int, dict[str, Any]]:
        # The endpoint restores its queues just after it starts answering: poll, generously.
        seen: dict[int, dict[str, Any]] = {}

        def enough() -> bool:
            self.receive(seen, min(10, count - len(seen)), delete)
            return len(seen) >= count

        services.wait_until(enough, 90, f"{count} dead letters", interval=0.5)
        return seen

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) letters."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=names)["Attributes"]
        return int(attributes[names[0]]), int(attributes[names[1]])


def restart_reader(endpoint: services.Service, settings: Settings) -> Reader:
    endpoint.start()
    reader: list[Reader] = []

    def queue_restored() -> bool:
        try:
            reader.append(Reader(settings))
        except Exception:
            return False
        return True

    services.wait_until(queue_restored, 90, "the restored dead-letter queue", interval=0.5)
    return reader[0]


def test_letters_acknowledged_just_before_a_sigkill_are_receivable_after_restart(
    endpoint: services.Service, settings: Settings
) -> None:
    # GIVEN 25 dead letters acknowledged by SendMessageBatch, 5 of them already read and deleted by an operator
    sent = letters(25)
    DeadLetterQueue(settings).send(sent)
    deleted = Reader(settings).receive_until(5, delete=True)
    # WHEN the endpoint is killed with SIGKILL at once, and started again on the same data folder
    endpoint.kill()
    reader = restart_reader(endpoint, settings)
    # THEN every other letter is receivable with its content, and the deleted ones are gone for good
    remaining = reader.receive_until(25 - len(deleted))
    assert set(remaining) | set(deleted) == set(range(25))
    assert not set(remaining) & set(deleted)
    assert remaining == {offset: json.loads(encode_letter(sent[offset])) for offset in remaining}
    assert reader.counts() == (0, 25 - len(deleted))


def test_letters_survive_a_graceful_restart_and_the_setup_runs_again(
    endpoint: services.Service, settings: Settings
) -> None:
    # GIVEN 12 dead letters acknowledged by the endpoint
    sent = letters(12)
    DeadLetterQueue(settings).send(sent)
    url = Reader(settings).url
    # WHEN the endpoint is stopped with SIGTERM, as `make down` does, and started again
    endpoint.stop()
    reader = restart_reader(endpoint, settings)
    # THEN orders-setup's queue step still succeeds on the restored queue, which holds every letter
    assert ensure_queue(settings) == url
    received = reader.receive_until(12)
    assert received == {letter.offset: json.loads(encode_letter(letter)) for letter in sent}
