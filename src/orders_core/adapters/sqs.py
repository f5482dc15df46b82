"""The dead-letter queue: an SQS queue holding every record the ingest refused, with the reason.

Locally it is ElasticMQ (``make up``) or a moto server (the tests) at ``AWS_ENDPOINT_URL``; on AWS (no
``AWS_ENDPOINT_URL``) it is real SQS. boto3 either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from orders_core.adapters.letters import MAX_LETTER_BYTES, encode_letter, minimal_letter
from orders_core.config import Settings
from orders_core.domain.ports import DeadLetter, DeadLetterUnavailable

log = logging.getLogger(__name__)

# SQS's documented batch limits: 10 letters, and MAX_LETTER_BYTES in all.
SQS_BATCH = 10


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

    def depth(self) -> tuple[int, float | None]:
        """How many letters wait (visible or in flight, approximate as SQS counts), and the age in seconds of
        the oldest among up to 10 looked at, or None when none is visible.

        SQS keeps no attribute for the oldest letter (CloudWatch's ApproximateAgeOfOldestMessage is made from
        outside), so this looks at a few without taking them: received with a visibility timeout of 0, they
        stay where they are. ElasticMQ hands out the oldest first; standard SQS a sample."""
        client, queue_url = self._target()
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
        waiting = sum(int(attributes.get(name, 0)) for name in names)
        if not int(attributes.get("ApproximateNumberOfMessages", 0)):
            return waiting, None
        answer = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=SQS_BATCH, VisibilityTimeout=0,
                                        WaitTimeSeconds=0, AttributeNames=["SentTimestamp"])  # fmt: skip
        sent_ms = [int(m["Attributes"]["SentTimestamp"]) for m in answer.get("Messages", []) if "Attributes" in m]
        if not sent_ms:
            return waiting, None
        return waiting, max(0.0, time.time() - min(sent_ms) / 1000)

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
            Entries=[{"Id": str(i), "MessageBody": minimal_letter(letter)} for i, letter in enumerate(refused)],
        )
        if answer.get("Failed"):
            raise DeadLetterUnavailable(f"SQS refused {len(answer['Failed'])} minimal dead letters: {answer['Failed']}")


def _message(letter: DeadLetter) -> str:
    try:
        return encode_letter(letter)
    except Exception:  # whatever a letter holds, its record must still be dead-lettered
        log.exception("dead letter for %s@%d could not be encoded", letter.topic, letter.offset)
        return minimal_letter(letter)


def _batches(letters: Sequence[DeadLetter]) -> Iterator[list[tuple[DeadLetter, str]]]:
    """Letters with their bodies, in batches SQS accepts: at most 10 letters and MAX_LETTER_BYTES in all."""
    batch: list[tuple[DeadLetter, str]] = []
    size = 0
    for letter in letters:
        body = _message(letter)
        if batch and (len(batch) == SQS_BATCH or size + len(body) > MAX_LETTER_BYTES):
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
