"""``orders-dlq``: read the dead-letter queue and replay its records after a fix.

``stats`` counts letters by reason and age, ``peek`` prints them decoded, ``redrive`` produces their records back
to the topic they came from. A letter is deleted only after Kafka acknowledged its record, so a crash mid-way
leaves it in the queue; a record redriven too often is left alone, so a rule that still refuses it cannot make
it loop forever. Letters the tool reads but does not delete are made visible again at once.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from orders_core.adapters.kafka_client import client_config, flush
from orders_core.adapters.kafka_records import record_of
from orders_core.adapters.sqs import make_sqs_client
from orders_core.config import Settings, get_settings

# Headers of a redriven record: which letter it came from, and how many times it was redriven.
REDRIVE_COUNT_HEADER = "orders-redrive-count"
REDRIVEN_FROM_HEADER = "orders-redriven-from"
OUR_HEADERS = (REDRIVE_COUNT_HEADER, REDRIVEN_FROM_HEADER)
HOLD_S = 120  # letters read stay invisible to other readers this long while the tool works on them
SQS_BATCH = 10


class LetterUnreadable(Exception):
    """A letter's record cannot be rebuilt (its value was cut and Kafka no longer holds it): leave it."""


@dataclass(frozen=True, slots=True)
class Letter:
    """One message of the dead-letter queue, decoded."""

    message_id: str
    receipt_handle: str
    sent_at: datetime
    body: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", "?"))

    @property
    def coordinates(self) -> str:
        return f"{self.body.get('topic')}-{self.body.get('partition')}@{self.body.get('offset')}"

    @property
    def key(self) -> bytes | None:
        return _unb64(self.body.get("key"))

    @property
    def value(self) -> bytes | None:
        return _unb64(self.body.get("value"))

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """The record's own headers, as the letter kept them (``[[name, base64], ...]``)."""
        pairs = self.body.get("headers") or []
        return [(str(name), _unb64(value) or b"") for name, value in pairs if isinstance(name, str)]

    @property
    def redrive_count(self) -> int:
        return _redrive_count(self.headers)


def _redrive_count(headers: Sequence[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == REDRIVE_COUNT_HEADER and value.isdigit():
            return int(value)
    return 0


def _unb64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode(message: dict[str, Any]) -> Letter:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    sent_ms = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
    return Letter(message["MessageId"], message["ReceiptHandle"], datetime.fromtimestamp(sent_ms / 1000, UTC), body)


class Mailbox:
    """The dead-letter queue, read without consuming: letters are held invisible, then released or deleted."""

    def __init__(self, settings: Settings) -> None:
        self._client = make_sqs_client(settings)
        self._url = settings.dlq_queue_url or self._client.get_queue_url(QueueName=settings.dlq_queue_name)["QueueUrl"]

    def read(self, limit: int | None = None) -> list[Letter]:
        """Every letter (or the first ``limit``), each held invisible for ``HOLD_S`` seconds."""
        letters: list[Letter] = []
        empty_answers = 0
        # SQS may answer empty while letters remain (it samples its servers): stop after two empty long polls.
        while empty_answers < 2 and (limit is None or len(letters) < limit):
            answer = self._client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=SQS_BATCH if limit is None else min(SQS_BATCH, limit - len(letters)),
                VisibilityTimeout=HOLD_S,
                WaitTimeSeconds=1,
                AttributeNames=["SentTimestamp"],
            )
            messages = answer.get("Messages", [])
            empty_answers = 0 if messages else empty_answers + 1
            letters.extend(_decode(m) for m in messages)
        return letters

    def release(self, letters: Sequence[Letter]) -> None:
        """Make letters visible again now, for the next reader."""
        for chunk in _chunks(letters):
            self._client.change_message_visibility_batch(
                QueueUrl=self._url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                    for i, letter in enumerate(chunk)
                ],
            )

    def delete(self, letters: Sequence[Letter]) -> None:
        for chunk in _chunks(letters):
            self._client.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": letter.receipt_handle} for i, letter in enumerate(chunk)],
            )


def _chunks(letters: Sequence[Letter]) -> Iterator[Sequence[Letter]]:
    for start in range(0, len(letters), SQS_BATCH):
        yield letters[start : start + SQS_BATCH]


# ----------------------------------------------------------------------------------------------- stats, peek


def stats(letters: Iterable[Letter], now: datetime) -> dict[str, dict[str, Any]]:
    """Per reason: how many letters, and the age of the oldest and the newest in seconds."""
    by_reason: dict[str, list[datetime]] = {}
    for letter in letters:
        by_reason.setdefault(letter.reason, []).append(letter.sent_at)
    return {
        reason: {
            "count": len(times),
            "oldest_age_s": round((now - min(times)).total_seconds()),
            "newest_age_s": round((now - max(times)).total_seconds()),
        }
        for reason, times in sorted(by_reason.items())
    }


def peek_view(letter: Letter) -> dict[str, Any]:
    """The letter as a person reads it: the record's key and value as text when they are UTF-8."""
    view = {k: v for k, v in letter.body.items() if k not in ("key", "value", "headers")}
    view["message_id"] = letter.message_id
    view["sent_at"] = letter.sent_at.isoformat()
    for name, raw in (("key", letter.key), ("value", letter.value)):
        if raw is None:
            view[name] = None
            continue
        try:
            view[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            view[f"{name}_base64"] = letter.body[name]
    view["headers"] = {name: value.decode("utf-8", "replace") for name, value in letter.headers}
    return view


# ----------------------------------------------------------------------------------------------- redrive


@dataclass
class RedriveReport:
    redriven: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # coordinates -> why
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"redriven": len(self.redriven), "skipped": self.skipped, "failed": self.failed}


@dataclass(frozen=True)
class Selection:
    reasons: frozenset[str] = frozenset()  # empty: every reason (conflicts only with include_conflicts)
    since: datetime | None = None
    limit: int | None = None
    include_conflicts: bool = False
    max_redrives: int = 3

    def why_not(self, letter: Letter) -> str | None:
        """Why this letter is left alone, or None when it is to be redriven."""
        if self.reasons and letter.reason not in self.reasons:
            return "reason not selected"
        if letter.reason == "conflict" and not (self.include_conflicts or "conflict" in self.reasons):
            return "a conflict: the stored order wins; redriving cannot change that (--include-conflicts)"
        if self.since is not None and letter.sent_at < self.since:
            return "older than --since"
        if letter.redrive_count >= self.max_redrives:
            return f"redriven {letter.redrive_count} times already (--max-redrives {self.max_redrives})"
        if not letter.body.get("topic") or not isinstance(letter.body.get("partition"), int):
            return "not a record's letter"
        return None


class Redriver:
    """Produces letters' records back to Kafka; deletes a letter once Kafka acknowledged its record."""

    def __init__(self, settings: Settings, mailbox: Mailbox) -> None:
        self._settings = settings
        self._mailbox = mailbox
        self._producer = Producer(
            {**client_config(settings), "enable.idempotence": True, "acks": "all", "client.id": "orders-dlq"}
        )  # fmt: skip

    def record_of(self, letter: Letter) -> tuple[bytes | None, bytes | None, list[tuple[str, str | bytes | None]]]:
        """Key, value and headers to produce: the value re-read from Kafka when the letter holds only its start."""
        value, kept = letter.value, letter.headers
        if letter.body.get("value_truncated") or letter.body.get("value_bytes", 0) != len(value or b""):
            value, kept = self._reread(letter)  # the letter holds only the value's start, or none of it
        redrives = max(letter.redrive_count, _redrive_count(kept))
        headers: list[tuple[str, str | bytes | None]] = [h for h in kept if h[0] not in OUR_HEADERS]
        headers += [
            (REDRIVE_COUNT_HEADER, str(redrives + 1).encode()),
            (REDRIVEN_FROM_HEADER, f"{letter.coordinates} sqs:{letter.message_id}".encode()),
        ]
        return letter.key, value, headers

    def _reread(self, letter: Letter) -> tuple[bytes, list[tuple[str, bytes]]]:
        body = letter.body
        consumer = Consumer(
            {**client_config(self._settings), "group.id": "orders-dlq-reread",
             "enable.auto.commit": False, "enable.partition.eof": True}
        )  # fmt: skip
        try:
            consumer.assign([TopicPartition(body["topic"], body["partition"], body["offset"])])
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None:
                    continue
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise LetterUnreadable(f"Kafka: {error.str()}")
                if error is not None or message.offset() != body["offset"]:
                    break  # the record is gone (retention): the partition starts after it
                value = message.value() or b""
                if hashlib.sha256(value).hexdigest() != body.get("value_sha256"):
                    raise LetterUnreadable("the record in Kafka is not the one the letter describes")
                record, _unreadable = record_of(message)  # headers whose name is not UTF-8 are left out
                return bytes(value), list(record.headers)
        finally:
            consumer.close()
        raise LetterUnreadable("the value was cut to fit the queue and Kafka no longer holds the record")

    def redrive(self, letters: Sequence[Letter], selection: Selection, dry_run: bool) -> RedriveReport:
        report = RedriveReport()
        acked: list[Letter] = []
        chosen = 0
        for letter in letters:
            why = selection.why_not(letter) or ("--max reached" if selection.limit is not None
                                                and chosen >= selection.limit else None)  # fmt: skip
            if why is None:
                try:
                    key, value, headers = self.record_of(letter)
                except LetterUnreadable as exc:
                    why = str(exc)
            if why is not None:
                report.skipped[letter.coordinates] = why
                continue
            chosen += 1
            if dry_run:
                report.redriven.append(letter.coordinates)
                continue
            self._producer.produce(
                letter.body["topic"], value=value, key=key, headers=headers,
                on_delivery=self._on_delivery(letter, acked, report),
            )  # fmt: skip
            self._producer.poll(0)
        if flush(self._producer, 60) > 0:
            report.failed["(undelivered)"] = "Kafka did not acknowledge every record within 60 s"
        self._mailbox.delete(acked)
        done = {letter.message_id for letter in acked}
        self._mailbox.release([letter for letter in letters if letter.message_id not in done])
        return report

    @staticmethod
    def _on_delivery(letter: Letter, acked: list[Letter], report: RedriveReport) -> Callable[[Any, Any], None]:
        def delivered(err: Any, _message: Any) -> None:
            if err is None:
                acked.append(letter)
                report.redriven.append(letter.coordinates)
            else:
                report.failed[letter.coordinates] = str(err)

        return delivered


# ----------------------------------------------------------------------------------------------- CLI


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``1d`` ago, or an ISO 8601 moment (UTC when it names no zone)."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return now - timedelta(**{unit: int(match[1])})
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="orders-dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="letters by reason and age (JSON)")
    peek = commands.add_parser("peek", help="letters decoded, one JSON object a line")
    peek.add_argument("--max", type=int, default=10, help="how many letters (default 10)")
    redrive = commands.add_parser("redrive", help="produce letters' records back to their topic")
    redrive.add_argument("--reason", action="append", default=[], help="only letters of this reason (repeatable)")
    redrive.add_argument("--since", help="only letters sent since: 30m, 2h, 1d or an ISO 8601 moment")
    redrive.add_argument("--max", type=int, help="redrive at most this many letters")
    redrive.add_argument("--dry-run", action="store_true", help="say what would be redriven; change nothing")
    redrive.add_argument("--include-conflicts", action="store_true", help="redrive conflict letters too")
    redrive.add_argument("--max-redrives", type=int, default=3, help="leave records redriven this often (3)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    settings = get_settings()
    mailbox = Mailbox(settings)
    now = datetime.now(UTC)
    if args.command == "peek":
        letters = mailbox.read(args.max)
        try:
            for letter in letters:
                print(json.dumps(peek_view(letter), ensure_ascii=False))
        finally:
            mailbox.release(letters)
        return 0
    letters = mailbox.read()
    if args.command == "stats":
        mailbox.release(letters)
        print(json.dumps({"letters": len(letters), "by_reason": stats(letters, now)}, indent=2))
        return 0
    selection = Selection(
        reasons=frozenset(args.reason),
        since=parse_since(args.since, now) if args.since else None,
        limit=args.max,
        include_conflicts=args.include_conflicts,
        max_redrives=args.max_redrives,
    )
    try:
        report = Redriver(settings, mailbox).redrive(letters, selection, args.dry_run)
    except BaseException:
        mailbox.release(letters)
        raise
    print(json.dumps({"dry_run": args.dry_run, **report.as_dict(), "by_reason": dict(Counter(
        letter.reason for letter in letters if letter.coordinates in report.redriven))}, indent=2))  # fmt: skip
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
