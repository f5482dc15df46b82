"""The dead-letter queue: an SQS queue holding every record the ingest refused, with the reason.

Locally it is ElasticMQ (``make up``) or a moto server (the tests) at ``AWS_ENDPOINT_URL``; on AWS (no
``AWS_ENDPOINT_URL``) it is real SQS. boto3 either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from orders_core.adapters.letters import MAX_LETTER_BYTES, encode_letter, minimal_letter
from orders_core.domain.ports import DeadLetter, DeadLetterUnavailable, ReceivedLetter

log = logging.getLogger(__name__)

# SQS's documented batch limits: 10 letters, and MAX_LETTER_BYTES in all.
SQS_BATCH = 10
# A batch's entries that SQS failed on its side are sent again this often (only those), then handed back.
SEND_ATTEMPTS, RETRY_PAUSE_S = 3, 0.1
# Receipt handles SQS failed to delete or release are tried again this often.
ACT_ATTEMPTS = 3
# A reader asks again this often when an answer holds only letters it received before.
REPEATS_ASKED = 50
# SQS calls a reader makes at once (receives filling one page, deletes or releases of one): a call answers in
# milliseconds to tens of them, and a page of 100 letters is 10 of each. boto3's client is thread-safe and keeps
# as many connections (max_pool_connections, 10 by default).
PARALLEL_CALLS = 10


@dataclass(frozen=True, slots=True)
class SqsSettings:
    """What the dead-letter queue's adapters need: the queue (its URL, else its name) and where AWS is."""

    dlq_queue_name: str
    dlq_queue_url: str | None
    aws_region: str
    aws_endpoint_url: str | None


def make_sqs_client(settings: SqsSettings) -> Any:
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

    def __init__(self, settings: SqsSettings, client: Any = None) -> None:
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
        answer = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            VisibilityTimeout=0,
            WaitTimeSeconds=0,
            AttributeNames=["SentTimestamp"],
        )
        sent_ms = [int(m["Attributes"]["SentTimestamp"]) for m in answer.get("Messages", []) if "Attributes" in m]
        if not sent_ms:
            return waiting, None
        return waiting, max(0.0, time.time() - min(sent_ms) / 1000)

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send every letter or raise ``DeadLetterUnavailable`` naming those not sent (to be redelivered)."""
        batches = list(_batches(letters))
        for index, batch in enumerate(batches):
            later = [letter for rest in batches[index + 1 :] for letter, _ in rest]
            try:
                client, queue_url = self._target()
                unsent = self._send_batch(client, queue_url, batch)
            except (BotoCoreError, ClientError) as exc:
                with self._lock:
                    self._queue_url = self._settings.dlq_queue_url  # look the queue up again next time
                raise DeadLetterUnavailable(
                    f"dead-letter queue unreachable: {exc}", [letter for letter, _ in batch] + later
                ) from exc
            if unsent:
                raise DeadLetterUnavailable(f"SQS failed {len(unsent)} dead letters", unsent + later)

    def _send_batch(self, client: Any, queue_url: str, batch: list[tuple[DeadLetter, str]]) -> list[DeadLetter]:
        """Send one batch; only the entries SQS failed are sent again (the others are on the queue: sending them
        again would make duplicates). Returns the letters still not sent after ``SEND_ATTEMPTS``."""
        pending = dict(enumerate(batch))
        for attempt in range(SEND_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_S * attempt)
            answer = client.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": body} for i, (_, body) in pending.items()]
            )
            failed = {int(failure["Id"]): failure for failure in answer.get("Failed", [])}
            refused = {i: f for i, f in failed.items() if f.get("SenderFault")}
            if refused:
                # The queue refused these letters as they are: each goes as the minimal letter, which it always takes.
                log.warning(
                    "SQS refused %d dead letters (%s); sending minimal letters", len(refused), list(refused.values())
                )
            pending = {
                i: (pending[i][0], minimal_letter(pending[i][0]) if i in refused else pending[i][1]) for i in failed
            }
            if not pending:
                return []
        log.warning("SQS failed %d dead letters %d times", len(pending), SEND_ATTEMPTS)
        return [letter for letter, _ in pending.values()]


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


class SqsMailbox:
    """The dead-letter queue read page by page (``DeadLetterMailbox``): a received letter is held invisible for
    ``hold_s``; a letter SQS hands out again after that (or after another reader released it) is not handed to
    this reader twice."""

    def __init__(self, settings: SqsSettings, hold_s: int = 120, wait_s: int = 1, client: Any = None) -> None:
        self._client = client or make_sqs_client(settings)
        self._url: str = (
            settings.dlq_queue_url or self._client.get_queue_url(QueueName=settings.dlq_queue_name)["QueueUrl"]
        )
        self._endpoint = settings.aws_endpoint_url or f"AWS SQS ({settings.aws_region})"
        self._hold_s, self._wait_s = hold_s, wait_s
        self._handles: dict[str, str] = {}  # every letter received in this run: its latest receipt handle
        self._held_until: dict[str, float] = {}  # ... and when its latest hold ends (monotonic)
        self._pool = ThreadPoolExecutor(PARALLEL_CALLS, thread_name_prefix="sqs-mailbox")

    def describe(self) -> str:
        return f"SQS queue {self._url} at {self._endpoint}"

    def size(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self._client.get_queue_attributes(QueueUrl=self._url, AttributeNames=names)["Attributes"]
        return int(attributes[names[0]]) + int(attributes[names[1]])

    def receive(self, most: int) -> list[ReceivedLetter]:
        # Up to 10 letters a call (SQS's limit), the calls for more made at once. Letters back in view after the
        # hold may fill whole answers (a queue hands out its oldest first): ask again, as they are now held once
        # more; only empty answers mean nothing is there.
        asks = [SQS_BATCH] * (most // SQS_BATCH) + ([most % SQS_BATCH] if most % SQS_BATCH else [])
        for _ in range(REPEATS_ASKED):
            answers = list(self._pool.map(self._receive_messages, asks or [1]))
            messages = [message for answer in answers for message in answer]
            letters = self._new(messages, time.monotonic() + self._hold_s)
            if letters or not messages:
                return letters
        return []

    def _receive_messages(self, most: int) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._client.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=most,
            VisibilityTimeout=self._hold_s,
            WaitTimeSeconds=self._wait_s,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        return answer

    def _new(self, messages: list[dict[str, Any]], held_until: float) -> list[ReceivedLetter]:
        letters = []
        for message in messages:
            letter = ReceivedLetter(
                message["MessageId"],
                message["Body"],
                int(message.get("Attributes", {}).get("SentTimestamp", "0")),
                message["ReceiptHandle"],
            )
            if letter.letter_id not in self._handles:
                letters.append(letter)
            # A letter back in view after the hold is held again, not handed out twice; SQS takes only the
            # latest receipt handle of a message, so that is the one deleting or releasing it uses.
            self._handles[letter.letter_id] = letter.handle
            self._held_until[letter.letter_id] = held_until
        return letters

    def delete(self, letters: Sequence[ReceivedLetter]) -> list[ReceivedLetter]:
        return self._act(letters, "delete_message_batch", {})

    def release(self, letters: Sequence[ReceivedLetter]) -> list[ReceivedLetter]:
        # A letter whose hold has ended is in view again already: no call for it (a short hold over a long
        # queue would otherwise cost as many calls as reading it did).
        now = time.monotonic()
        held = [letter for letter in letters if self._held_until.get(letter.letter_id, now + 1) > now]
        return self._act(held, "change_message_visibility_batch", {"VisibilityTimeout": 0})

    def _act(self, letters: Sequence[ReceivedLetter], call: str, extra: dict[str, Any]) -> list[ReceivedLetter]:
        """Delete or release in batches of 10, several at once; the entries SQS reports ``Failed`` are tried
        again, and those still failing (a receipt handle gone stale: the letter was received by another reader)
        are returned."""
        batches = [letters[start : start + SQS_BATCH] for start in range(0, len(letters), SQS_BATCH)]
        return [
            letter
            for failed in self._pool.map(lambda batch: self._act_on(batch, call, extra), batches)
            for letter in failed
        ]

    def _act_on(self, batch: Sequence[ReceivedLetter], call: str, extra: dict[str, Any]) -> list[ReceivedLetter]:
        pending = dict(enumerate(batch))
        for attempt in range(ACT_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_S * attempt)
            entries = [
                {"Id": str(i), "ReceiptHandle": self._handles.get(letter.letter_id, letter.handle), **extra}
                for i, letter in pending.items()
            ]
            answer = getattr(self._client, call)(QueueUrl=self._url, Entries=entries)
            pending = {int(f["Id"]): pending[int(f["Id"])] for f in answer.get("Failed", [])}
            if not pending:
                return []
        log.warning("SQS %s failed for %d letters", call, len(pending))
        return list(pending.values())

    def close(self) -> None:
        self._handles.clear()
        self._held_until.clear()
        self._pool.shutdown()


def ensure_queue(settings: SqsSettings) -> str:
    """Create the dead-letter queue if it is missing (local stacks); returns its URL."""
    client = make_sqs_client(settings)
    url: str = client.create_queue(QueueName=settings.dlq_queue_name, Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    return url
