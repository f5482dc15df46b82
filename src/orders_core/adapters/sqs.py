"""The dead-letter queue: an SQS queue holding every record the ingest refused, with the reason.

Locally it is ElasticMQ (``make up``) or a moto server (the tests) at ``AWS_ENDPOINT_URL``; on AWS (no
``AWS_ENDPOINT_URL``) it is real SQS. boto3 either way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from orders_core.config import Settings

log = logging.getLogger(__name__)

# SQS's documented limits (SendMessage, SendMessageBatch): a message, and the sum of a batch's messages, of
# at most 256 KiB (262,144 bytes; AWS now takes up to 1 MiB, but 256 KiB is taken everywhere), 10 a batch,
# only the characters #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF (others: InvalidMessageContents).
# A letter must always be accepted, or the records behind it would wait forever. So the body is ASCII JSON
# (every other character escaped), every string in it is bounded, and the raw value, the key and the error list
# are cut to fit; the record stays in Kafka (topic, partition, offset) for anyone who needs the rest.
SQS_MAX_BYTES = 256 * 1024
SQS_BATCH = 10
MAX_VALUE_BYTES = 160 * 1024  # base64: 218,456 bytes
MAX_KEY_BYTES = 1024
MAX_ERRORS = 50
MAX_ERRORS_BYTES = 16 * 1024
# Characters of each text (up to 12 bytes each once escaped): with the value, key and errors, under 250 KiB.
MAX_TEXT = 1000  # the message, an error's field or message
MAX_NAME = 128  # the reason, the order_uid
MAX_TOPIC = 256  # Kafka's own limit is 249
MAX_HEADERS, MAX_HEADER_NAME, MAX_HEADER_BYTES = 16, 64, 256  # the record's headers: at most about 7 KiB


class DeadLetterUnavailable(Exception):
    """The queue could not take these letters: their records must be redelivered, not dropped."""

    def __init__(self, message: str, unsent: Sequence[DeadLetter] = ()) -> None:
        super().__init__(message)
        self.unsent = list(unsent)


def _text(value: str | None, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else value[:limit]


def _bounded_errors(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    kept: list[dict[str, str]] = []
    size = 0
    for error in errors[:MAX_ERRORS]:
        bounded = {str(name)[:MAX_TEXT]: str(text)[:MAX_TEXT] for name, text in list(error.items())[:2]}
        size += len(json.dumps(bounded)) + 2
        if size > MAX_ERRORS_BYTES:
            break
        kept.append(bounded)
    return kept


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str  # not_utf8 | not_json | not_object | invalid | conflict | store_rejected | internal
    message: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    errors: list[dict[str, str]] = field(default_factory=list)
    order_uid: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()  # the record's own (a redrive counts itself in one)
    request_id: str | None = None  # the invocation that refused the record: its log line tells the rest

    def to_message(self) -> str:
        """The SQS body: ASCII JSON, under SQS_MAX_BYTES, with the raw key and value in base64."""
        value = self.value or b""
        body: dict[str, Any] = {
            "reason": _text(self.reason, MAX_NAME),
            "message": _text(self.message),
            "topic": _text(self.topic, MAX_TOPIC),
            "partition": self.partition,
            "offset": self.offset,
            "key": None if self.key is None else base64.b64encode(self.key[:MAX_KEY_BYTES]).decode(),
            "key_truncated": self.key is not None and len(self.key) > MAX_KEY_BYTES,
            "value": None if self.value is None else base64.b64encode(value[:MAX_VALUE_BYTES]).decode(),
            "value_bytes": len(value),
            "value_sha256": hashlib.sha256(value).hexdigest(),
            "value_truncated": len(value) > MAX_VALUE_BYTES,
            "errors": _bounded_errors(self.errors),
            "error_count": len(self.errors),
            "order_uid": _text(self.order_uid, MAX_NAME),
            "headers": [
                [_text(name, MAX_HEADER_NAME), base64.b64encode(value[:MAX_HEADER_BYTES]).decode()]
                for name, value in self.headers[:MAX_HEADERS]
            ],
            "request_id": _text(self.request_id, MAX_NAME),
        }
        text = json.dumps(body)  # ensure_ascii: lone surrogates, U+FFFE and the like travel as \u escapes
        return text if len(text) <= SQS_MAX_BYTES else self.minimal_message()

    def minimal_message(self) -> str:
        """What is always accepted: where the record is, its value's hash, and why it was refused."""
        value = self.value or b""
        return json.dumps(
            {
                "reason": _text(self.reason, MAX_NAME),
                "topic": _text(self.topic, MAX_TOPIC),
                "partition": self.partition,
                "offset": self.offset,
                "value_bytes": len(value),
                "value_sha256": hashlib.sha256(value).hexdigest(),
                "request_id": _text(self.request_id, MAX_NAME),
                "minimal": True,
            }
        )


def make_sqs_client(settings: Settings) -> Any:
    """An SQS client with short timeouts, for the endpoint of ``settings``: the local one (ElasticMQ, moto) when
    it names one, real AWS otherwise.

    boto3 is given the endpoint itself: a localstack-client session would take ``AWS_ENDPOINT_URL`` from the
    process environment over what it is given, so a tool or a test whose settings name another endpoint than
    its environment would read one queue and write another.
    """
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    session = boto3.session.Session(region_name=settings.aws_region)
    if settings.aws_endpoint_url and session.get_credentials() is None:
        # A local endpoint takes any credentials; a shell without AWS settings still reaches it.
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - not a secret: a local endpoint checks none
            region_name=settings.aws_region,
        )
    return session.client("sqs", endpoint_url=settings.aws_endpoint_url or None, config=config)


class DeadLetterQueue:
    """Sends dead letters to SQS; the client and queue URL are made on first use and kept."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._client: Any = client
        self._queue_url: str | None = settings.dlq_queue_url

    def _target(self) -> tuple[Any, str]:
        with self._lock:
            if self._client is None:
                self._client = make_sqs_client(self._settings)
            if self._queue_url is None:
                self._queue_url = self._client.get_queue_url(QueueName=self._settings.dlq_queue_name)["QueueUrl"]
            return self._client, self._queue_url

    def ping(self) -> None:
        """Raise ``DeadLetterUnavailable`` unless the queue answers (readiness)."""
        try:
            client, queue_url = self._target()
            client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        except (BotoCoreError, ClientError) as exc:
            with self._lock:
                self._queue_url = self._settings.dlq_queue_url
            raise DeadLetterUnavailable(f"dead-letter queue unreachable: {exc}") from exc

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send every letter or raise ``DeadLetterUnavailable`` naming those not sent (to be redelivered)."""
        sent = 0
        try:
            client, queue_url = self._target()
            for batch in _batches(letters):
                self._send_batch(client, queue_url, batch)
                sent += len(batch)
        except (BotoCoreError, ClientError) as exc:
            with self._lock:
                self._queue_url = self._settings.dlq_queue_url  # look the queue up again next time
            raise DeadLetterUnavailable(f"dead-letter queue unreachable: {exc}", letters[sent:]) from exc
        except DeadLetterUnavailable as exc:
            raise DeadLetterUnavailable(str(exc), letters[sent:]) from exc

    @staticmethod
    def _send_batch(client: Any, queue_url: str, batch: list[tuple[DeadLetter, str]]) -> None:
        answer = client.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, (_, body) in enumerate(batch)]
        )
        failures = answer.get("Failed", [])
        if not failures:
            return
        if not all(failure.get("SenderFault") for failure in failures):  # the queue's fault: try again later
            raise DeadLetterUnavailable(f"SQS failed {len(failures)} dead letters: {failures}")
        refused = [batch[int(failure["Id"])][0] for failure in failures]
        # The queue refused these letters as they are: send each as the minimal letter, which it always takes.
        log.warning("SQS refused %d dead letters (%s); sending minimal letters", len(refused), answer["Failed"])
        answer = client.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "MessageBody": letter.minimal_message()} for i, letter in enumerate(refused)],
        )
        if answer.get("Failed"):
            raise DeadLetterUnavailable(f"SQS refused {len(answer['Failed'])} minimal dead letters: {answer['Failed']}")


def _message(letter: DeadLetter) -> str:
    try:
        return letter.to_message()
    except Exception:  # whatever a letter holds, its record must still be dead-lettered
        log.exception("dead letter for %s@%d could not be encoded", letter.topic, letter.offset)
        return letter.minimal_message()


def _batches(letters: Sequence[DeadLetter]) -> Iterator[list[tuple[DeadLetter, str]]]:
    """Letters with their bodies, in batches SQS accepts: at most 10 letters and SQS_MAX_BYTES in all."""
    batch: list[tuple[DeadLetter, str]] = []
    size = 0
    for letter in letters:
        body = _message(letter)
        if batch and (len(batch) == SQS_BATCH or size + len(body) > SQS_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((letter, body))
        size += len(body)
    if batch:
        yield batch


def ensure_queue(settings: Settings) -> str:
    """Create the dead-letter queue if it is missing (local stacks); returns its URL."""
    client = make_sqs_client(settings)
    url: str = client.create_queue(QueueName=settings.dlq_queue_name, Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    return url
