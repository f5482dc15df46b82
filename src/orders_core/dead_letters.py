"""The dead-letter queue: an SQS queue holding every record the ingest refused, with the reason.

Locally it is ElasticMQ (``make up``, compose) or a moto server (tests), reached through a localstack-client
session; on AWS (no ``AWS_ENDPOINT_URL``) it is real SQS through boto3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
import localstack_client.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import Settings

# SQS takes up to 256 KiB a message on every implementation. A letter must always fit, or the records
# behind it would wait forever: the raw value, the key and the error list are cut to fit, and the record
# stays in Kafka (topic, partition, offset) for anyone who needs the rest.
MAX_VALUE_BYTES = 160 * 1024
MAX_KEY_BYTES = 1024
MAX_ERRORS = 50
# One SendMessageBatch takes at most 10 entries and, all bodies together, the size of one message: several
# full-size letters must go in separate batches, or the batch is refused as a whole, every time.
SQS_BATCH = 10
SQS_BATCH_BYTES = 256 * 1024


class DeadLetterUnavailable(Exception):
    """The queue could not take the letters: the records must be redelivered, not dropped."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str  # not_utf8 | not_json | not_object | invalid | conflict | store_rejected
    message: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    errors: list[dict[str, str]] = field(default_factory=list)
    order_uid: str | None = None

    def to_message(self) -> str:
        """The SQS body: JSON with the raw key and value in base64 (they need not be text)."""
        value = self.value or b""
        body: dict[str, Any] = asdict(self)
        body["message"] = self.message[:2000]
        body["errors"] = self.errors[:MAX_ERRORS]
        body["error_count"] = len(self.errors)
        body["key"] = None if self.key is None else base64.b64encode(self.key[:MAX_KEY_BYTES]).decode()
        body["key_truncated"] = self.key is not None and len(self.key) > MAX_KEY_BYTES
        body["value"] = None if self.value is None else base64.b64encode(value[:MAX_VALUE_BYTES]).decode()
        body["value_bytes"] = len(value)
        body["value_sha256"] = hashlib.sha256(value).hexdigest()
        body["value_truncated"] = len(value) > MAX_VALUE_BYTES
        return json.dumps(body, ensure_ascii=False)


def make_sqs_client(settings: Settings) -> Any:
    """An SQS client with short timeouts: the local endpoint when one is set, real AWS otherwise."""
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    if settings.aws_endpoint_url:
        netloc = urlsplit(settings.aws_endpoint_url).netloc
        session = localstack_client.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", aws_session_token=None,  # noqa: S106
            region_name=settings.aws_region, localstack_host=netloc,
        )  # fmt: skip
        return session.client("sqs", config=config)
    return boto3.client("sqs", region_name=settings.aws_region, config=config)


class DeadLetterQueue:
    """Sends dead letters to SQS; the client and queue URL are made on first use and kept."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._client: Any = None
        self._queue_url: str | None = settings.dlq_queue_url

    def _target(self) -> tuple[Any, str]:
        with self._lock:
            if self._client is None:
                self._client = make_sqs_client(self._settings)
            if self._queue_url is None:
                self._queue_url = self._client.get_queue_url(QueueName=self._settings.dlq_queue_name)["QueueUrl"]
            return self._client, self._queue_url

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send every letter or raise ``DeadLetterUnavailable`` (then the caller redelivers them all)."""
        if not letters:
            return
        try:
            client, queue_url = self._target()
            for chunk in batches([letter.to_message() for letter in letters]):
                answer = client.send_message_batch(
                    QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(chunk)]
                )
                if answer.get("Failed"):
                    raise DeadLetterUnavailable(f"SQS refused {len(answer['Failed'])} dead letters: {answer['Failed']}")
        except (BotoCoreError, ClientError) as exc:
            with self._lock:
                self._queue_url = self._settings.dlq_queue_url  # look the queue up again next time
            raise DeadLetterUnavailable(f"dead-letter queue unreachable: {exc}") from exc


def batches(bodies: Sequence[str]) -> Iterator[list[str]]:
    """The bodies in order, in batches SQS takes: up to ``SQS_BATCH`` of them within ``SQS_BATCH_BYTES``."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode())
        if batch and (len(batch) == SQS_BATCH or size + length > SQS_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch


def ensure_queue(settings: Settings) -> str:
    """Create the dead-letter queue if it is missing (local stacks); returns its URL."""
    client = make_sqs_client(settings)
    url: str = client.create_queue(QueueName=settings.dlq_queue_name, Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    return url
