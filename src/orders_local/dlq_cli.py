"""``orders-dlq``: read the dead letters and replay their records after a fix.

``stats`` counts letters by reason and age, ``peek`` prints them decoded, ``redrive`` produces their records back
to the topic they came from, exactly as they were written, and ``replay-failed`` does the same for the batches the
platform gave up on (its on-failure objects in S3). The letters are read from where the ingest sends them
(``DEAD_LETTER_SINK``: the SQS queue or the Kafka topic), page by page, up to the number waiting when the run
began, each letter once. A page's records are produced in one Kafka transaction with the ledger's note of each
(``DLQ_LEDGER_TOPIC``), and its letters deleted only after that commit: a crash leaves the letters, and the next
run, finding them in the ledger, deletes them without producing twice. The ledger also counts how often a
record was redriven, so a rule that still refuses it cannot make it loop forever. Letters read and not deleted
are handed back to the next reader at the end of the run.

The first line (on stderr) names the queue or topic and the Kafka cluster the run acts on: with
``AWS_ENDPOINT_URL`` unset, that is AWS.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from orders_core.adapters.kafka_client import KafkaAuthError, KafkaSettings, client_config, refusal
from orders_core.adapters.kafka_dlq import KafkaDeadLetterSettings, ensure_topics, open_topic_producer
from orders_core.adapters.kafka_event import BadEvent, decode_event
from orders_core.adapters.kafka_records import record_of
from orders_core.adapters.letters import (
    decode_letter,
    letter_headers,
    letter_is_whole,
    letter_key,
    letter_value,
)
from orders_core.bootstrap import dead_letter_mailbox
from orders_core.config import Settings, get_settings, narrow
from orders_core.domain.ports import DeadLetterMailbox, KafkaRecord, ReceivedLetter

HOLD_S = 120  # letters read stay invisible to other readers this long while the tool works on them (SQS)
PAGE = 100  # letters acted on together: one Kafka transaction, then their deletes
EMPTY_RECEIVES = 3  # a run also ends after this many receives in a row bring nothing new
TRANSACTIONAL_ID = "orders-dlq"  # one redrive at a time: a second one fences the first

Produced = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


class LetterUnreadable(Exception):
    """A letter's record cannot be rebuilt (it was cut to fit and Kafka no longer holds it): leave it."""


@dataclass(frozen=True, slots=True)
class Letter:
    """One letter, decoded, with the redrive count of its record."""

    received: ReceivedLetter
    body: dict[str, Any]
    redrives: int = 0

    @classmethod
    def of(cls, received: ReceivedLetter, ledger: Ledger | None = None) -> Letter:
        letter = cls(received, decode_letter(received.body))
        return cls(received, letter.body, ledger.redrives_of(letter.coordinates) if ledger else 0)

    @property
    def message_id(self) -> str:
        return self.received.letter_id

    @property
    def sent_at(self) -> datetime:
        return datetime.fromtimestamp(self.received.sent_at_ms / 1000, UTC)

    @property
    def reason(self) -> str:
        return str(self.body.get("reason", "?"))

    @property
    def coordinates(self) -> str:
        """Where the refused record is: ``topic-partition@offset``."""
        return f"{self.body.get('topic')}-{self.body.get('partition')}@{self.body.get('offset')}"


def record_coordinates(topic: str, partition: int, offset: int) -> str:
    return f"{topic}-{partition}@{offset}"


# ----------------------------------------------------------------------------------------------- the ledger


class Ledger:
    """orders-dlq's notes on a compacted topic, one per record it produced again: keyed by where the refused record
    was, with where its copy went and how many times that record has now been redriven."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.dlq_ledger_topic
        self._settings = settings
        self.done: dict[str, dict[str, Any]] = {}  # refused record -> note
        self._count_at: dict[str, int] = {}  # a redriven copy's place -> redrives behind it

    def load(self) -> Ledger:
        ensure_topics(narrow(self._settings, KafkaDeadLetterSettings), [(self.topic, 1, {"cleanup.policy": "compact"})])
        consumer = Consumer(
            {
                **client_config(narrow(self._settings, KafkaSettings)),
                "group.id": "orders-dlq-ledger",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            _low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
            if high > 0:
                consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
                deadline = time.monotonic() + 60
                position = 0
                while position < high and time.monotonic() < deadline:
                    for message in consumer.consume(1000, timeout=1.0):
                        error = message.error()
                        if error is not None:
                            if error.code() == KafkaError._PARTITION_EOF:
                                position = high
                                continue
                            raise KafkaException(error)
                        position = (message.offset() or 0) + 1
                        key, value = message.key(), message.value()
                        if key and value:
                            self.note(key.decode(), json.loads(value))
        finally:
            consumer.close()
        return self

    def note(self, source: str, entry: dict[str, Any]) -> None:
        self.done[source] = entry
        self._count_at[str(entry.get("to"))] = int(entry.get("redrives", 1))

    def redrives_of(self, coordinates: str) -> int:
        """How many redrives are behind the record at ``coordinates`` (0: it was never a redrive's copy)."""
        return self._count_at.get(coordinates, 0)


# ----------------------------------------------------------------------------------------------- stats, peek


def stats(letters: Sequence[Letter], now: datetime) -> dict[str, dict[str, Any]]:
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


class Tally:
    """``stats`` as the pages go: counts and the oldest and newest moment per reason, not the letters."""

    def __init__(self) -> None:
        self.by_reason: dict[str, list[Any]] = {}
        self.letters = 0

    def add(self, letter: Letter) -> None:
        self.letters += 1
        entry = self.by_reason.setdefault(letter.reason, [0, letter.sent_at, letter.sent_at])
        entry[0] += 1
        entry[1], entry[2] = min(entry[1], letter.sent_at), max(entry[2], letter.sent_at)

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "letters": self.letters,
            "by_reason": {
                reason: {
                    "count": count,
                    "oldest_age_s": round((now - oldest).total_seconds()),
                    "newest_age_s": round((now - newest).total_seconds()),
                }
                for reason, (count, oldest, newest) in sorted(self.by_reason.items())
            },
        }


def peek_view(letter: Letter) -> dict[str, Any]:
    """The letter as a person reads it: the record's key and value as text when they are UTF-8."""
    view = {k: v for k, v in letter.body.items() if k not in ("key", "value", "headers")}
    view["message_id"] = letter.message_id
    view["sent_at"] = letter.sent_at.isoformat()
    view["redrives"] = letter.redrives
    for name, raw in (("key", letter_key(letter.body)), ("value", letter_value(letter.body))):
        if raw is None:
            view[name] = None
            continue
        try:
            view[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            view[f"{name}_base64"] = letter.body[name]
    view["headers"] = [[name, value.decode("utf-8", "replace")] for name, value in letter_headers(letter.body)]
    return view


# ----------------------------------------------------------------------------------------------- reading


class Reading:
    """One run's pass over the mailbox: up to the size it had when the run began, each letter once; the letters
    held and not deleted are handed back at the end."""

    def __init__(self, mailbox: DeadLetterMailbox, hold_s: float = HOLD_S) -> None:
        self.mailbox = mailbox
        # A page is filled for at most half the hold: its first letters must not come back into view (and fill
        # the answers of its last receives) before it is acted on.
        self.fill_s = hold_s / 2
        self.snapshot = mailbox.size()
        self.seen = 0
        self.held: dict[str, ReceivedLetter] = {}
        self.not_released: list[str] = []

    def pages(self, size: int = PAGE, limit: int | None = None) -> Iterator[list[ReceivedLetter]]:
        empty = 0
        while self.seen < self.snapshot and (limit is None or self.seen < limit) and empty < EMPTY_RECEIVES:
            page: list[ReceivedLetter] = []
            began = time.monotonic()
            while len(page) < size and self.seen + len(page) < self.snapshot:
                if page and time.monotonic() - began > self.fill_s:
                    break
                want = min(size - len(page), self.snapshot - self.seen - len(page))
                if limit is not None:
                    want = min(want, limit - self.seen - len(page))
                if want <= 0:
                    break
                got = self.mailbox.receive(want)
                if not got:
                    empty += 1
                    break
                empty = 0
                page += got
            if not page:
                continue
            self.seen += len(page)
            for letter in page:
                self.held[letter.letter_id] = letter
            yield page

    def forget(self, letters: Sequence[ReceivedLetter]) -> None:
        for letter in letters:
            self.held.pop(letter.letter_id, None)

    def finish(self) -> None:
        failed = self.mailbox.release(list(self.held.values()))
        self.not_released = [letter.letter_id for letter in failed]
        self.held.clear()


# ----------------------------------------------------------------------------------------------- redrive


@dataclass
class RedriveReport:
    redriven: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # coordinates -> why
    failed: dict[str, str] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)  # redriven before (a run that stopped before its deletes)
    duplicates: list[str] = field(default_factory=list)  # another copy of a letter redriven in this run
    not_deleted: list[str] = field(default_factory=list)
    by_reason: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "redriven": len(self.redriven),
            "skipped": self.skipped,
            "failed": self.failed,
            "already_redriven": len(self.already),
            "duplicates": len(self.duplicates),
            "not_deleted": self.not_deleted,
            "by_reason": dict(self.by_reason),
        }


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
        if letter.redrives >= self.max_redrives:
            return f"redriven {letter.redrives} times already (--max-redrives {self.max_redrives})"
        if not letter.body.get("topic") or not isinstance(letter.body.get("partition"), int):
            return "not a record's letter"
        return None


def reread(settings: Settings, body: dict[str, Any]) -> Produced:
    """The record at the letter's place, read back from Kafka: key, value and every header as written."""
    consumer = Consumer(
        {
            **client_config(narrow(settings, KafkaSettings)),
            "group.id": "orders-dlq-reread",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
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
            record, unreadable = record_of(message)
            if hashlib.sha256(record.value or b"").hexdigest() != body.get("value_sha256"):
                raise LetterUnreadable("the record in Kafka is not the one the letter describes")
            if unreadable is not None:  # a header name that is not UTF-8: it cannot be produced as written
                raise LetterUnreadable(f"its {unreadable}")
            return record.key, record.value, list(record.headers)
    finally:
        consumer.close()
    raise LetterUnreadable("the letter holds only part of the record and Kafka no longer holds it")


class Replayer:
    """Produces records again exactly as written, a page per Kafka transaction together with the ledger's notes."""

    def __init__(self, settings: Settings, ledger: Ledger) -> None:
        self._settings = settings
        self._ledger = ledger
        self._producer = open_topic_producer(narrow(settings, KafkaDeadLetterSettings), TRANSACTIONAL_ID)

    def produce(self, jobs: Sequence[tuple[str, str, Produced, int]]) -> tuple[set[str], dict[str, str]]:
        """``jobs``: (source coordinates, topic, record, redrives it will have). Returns the sources committed,
        and why the others were not (all or none of a page is committed)."""
        if not jobs:
            return set(), {}
        landed: dict[str, str] = {}
        errors: dict[str, str] = {}

        def reported(source: str) -> Callable[[Any, Any], None]:
            def delivered(err: Any, message: Any) -> None:
                if err is None:
                    landed[source] = record_coordinates(message.topic(), message.partition(), message.offset())
                else:
                    errors[source] = str(err)

            return delivered

        try:
            self._producer.begin_transaction()
            for source, topic, (key, value, headers), _ in jobs:
                self._producer.produce(
                    topic, value=value, key=key, headers=list(headers) or None, on_delivery=reported(source)
                )
            self._producer.flush(60)
            if errors or len(landed) != len(jobs):
                raise KafkaException(KafkaError(KafkaError._FAIL, "not every record was acknowledged"))
            notes = {}
            for source, _topic, _record, redrives in jobs:
                notes[source] = {"to": landed[source], "redrives": redrives, "at": datetime.now(UTC).isoformat()}
                self._producer.produce(self._ledger.topic, key=source.encode(), value=json.dumps(notes[source]))
            self._producer.commit_transaction(60)
        except KafkaException as exc:
            # Failing that, the transaction times out on the broker: nothing of it becomes visible either way.
            with contextlib.suppress(KafkaException):
                self._producer.abort_transaction(30)
            why = str(exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else exc)
            return set(), {source: errors.get(source, why) for source, *_ in jobs}
        for source, note in notes.items():
            self._ledger.note(source, note)
        return set(notes), {}

    def close(self) -> None:
        self._producer.flush(10)


def letter_record(settings: Settings, letter: Letter) -> Produced:
    """Key, value and headers to produce: the letter's when it holds the whole record, else Kafka's."""
    if letter_is_whole(letter.body):
        return letter_key(letter.body), letter_value(letter.body), letter_headers(letter.body)
    return reread(settings, letter.body)


def redrive(
    settings: Settings,
    reading: Reading,
    replayer: Replayer | None,
    ledger: Ledger,
    selection: Selection,
    rebuild: Callable[[Settings, Letter], Produced] = letter_record,
) -> RedriveReport:
    """Redrive page by page: choose, produce (one transaction), wait for the commit, delete. Dry run without a
    replayer."""
    report = RedriveReport()
    handled: set[str] = set()  # records redriven (or found redriven) in this run
    chosen_count = 0
    for page in reading.pages():
        jobs: list[tuple[str, str, Produced, int]] = []
        by_source: dict[str, list[Letter]] = {}
        deletable: list[ReceivedLetter] = []
        for received in page:
            letter = Letter.of(received, ledger)
            source = letter.coordinates
            if source in handled or source in by_source:
                report.duplicates.append(source)
                if source in handled:
                    deletable.append(received)
                else:
                    by_source[source].append(letter)
                continue
            if source in ledger.done:
                report.already.append(source)
                handled.add(source)
                deletable.append(received)
                continue
            why = selection.why_not(letter)
            if why is None and selection.limit is not None and chosen_count >= selection.limit:
                why = "--max reached"
            produced: Produced | None = None
            if why is None:
                try:
                    produced = rebuild(settings, letter)
                except LetterUnreadable as exc:
                    why = str(exc)
            if why is not None or produced is None:
                report.skipped[source] = why or "?"
                continue
            chosen_count += 1
            by_source[source] = [letter]
            jobs.append((source, str(letter.body["topic"]), produced, letter.redrives + 1))
        if replayer is None:  # a dry run: say what would be done
            for source, letters in by_source.items():
                report.redriven.append(source)
                report.by_reason[letters[0].reason] += 1
            continue
        committed, failed = replayer.produce(jobs)
        report.failed |= failed
        for source in committed:
            report.redriven.append(source)
            report.by_reason[by_source[source][0].reason] += 1
            handled.add(source)
            deletable += [letter.received for letter in by_source[source]]
        not_deleted = reading.mailbox.delete(deletable)
        report.not_deleted += [letter.letter_id for letter in not_deleted]
        reading.forget([letter for letter in deletable if letter not in not_deleted])
    return report


# ----------------------------------------------------------------------------------------------- replay-failed


def s3_client(settings: Settings) -> Any:
    """An S3 client for the endpoint of the settings (the local one when AWS_ENDPOINT_URL names one)."""
    import boto3

    session = boto3.session.Session(region_name=settings.aws_region)
    if settings.aws_endpoint_url and session.get_credentials() is None:
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106
            region_name=settings.aws_region,
        )
    return session.client("s3", endpoint_url=settings.aws_endpoint_url or None)


def failed_batch_records(document: Any) -> list[KafkaRecord]:
    """The records of one on-failure object: the platform writes the invocation's metadata and, for an S3
    destination, the whole invocation (``payload``: the Kafka event, as an object or as its JSON text)."""
    payload = document.get("payload") if isinstance(document, dict) else None
    if isinstance(payload, str):
        payload = json.loads(payload)
    return decode_event(payload)


@dataclass
class ReplayReport:
    objects: int = 0
    replayed: int = 0
    already: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # object key -> why it stays

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "replayed": self.replayed,
            "already_replayed": self.already,
            "skipped": self.skipped,
            "failed": self.failed,
            "deleted": self.deleted,
            "kept": self.kept,
        }


def replay_failed(
    settings: Settings, s3: Any, bucket: str, prefix: str, replayer: Replayer | None, ledger: Ledger, max_redrives: int
) -> ReplayReport:
    """Each object's records produced again (one transaction an object), the object deleted once they are."""
    report = ReplayReport()
    for listing in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in listing.get("Contents", []):
            key = item["Key"]
            report.objects += 1
            try:
                records = failed_batch_records(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            except (ValueError, BadEvent) as exc:
                report.kept[key] = f"not an on-failure record of a Kafka batch: {exc}"
                continue
            jobs: list[tuple[str, str, Produced, int]] = []
            left_alone = False
            for record in records:
                source = record_coordinates(record.topic, record.partition, record.offset)
                if source in ledger.done:
                    report.already += 1
                    continue
                redrives = ledger.redrives_of(source)
                if redrives >= max_redrives:
                    report.skipped[source] = f"redriven {redrives} times already (--max-redrives {max_redrives})"
                    left_alone = True
                    continue
                jobs.append((source, record.topic, (record.key, record.value, list(record.headers)), redrives + 1))
            if replayer is None:
                report.replayed += len(jobs)
                continue
            committed, failed = replayer.produce(jobs)
            report.replayed += len(committed)
            report.failed |= failed
            if failed or left_alone:
                report.kept[key] = "some records were not replayed"
                continue
            s3.delete_object(Bucket=bucket, Key=key)  # a versioned bucket keeps it as a noncurrent version
            report.deleted.append(key)
    return report


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
    parser = argparse.ArgumentParser(
        prog="orders-dlq", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hold-s",
        type=int,
        default=HOLD_S,
        help=f"seconds a letter read stays hidden from other readers (SQS; default {HOLD_S})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("stats", help="letters by reason and age (JSON)")
    peek = commands.add_parser("peek", help="letters decoded, one JSON object a line")
    peek.add_argument("--max", type=int, default=10, help="how many letters (default 10)")
    redrive_ = commands.add_parser("redrive", help="produce letters' records back to their topic")
    redrive_.add_argument("--reason", action="append", default=[], help="only letters of this reason (repeatable)")
    redrive_.add_argument("--since", help="only letters sent since: 30m, 2h, 1d or an ISO 8601 moment")
    redrive_.add_argument("--max", type=int, help="redrive at most this many letters")
    redrive_.add_argument("--dry-run", action="store_true", help="say what would be redriven; change nothing")
    redrive_.add_argument("--include-conflicts", action="store_true", help="redrive conflict letters too")
    redrive_.add_argument("--max-redrives", type=int, default=3, help="leave records redriven this often (3)")
    replay = commands.add_parser("replay-failed", help="produce the records of the platform's on-failure objects")
    replay.add_argument("--bucket", required=True, help="the event source mapping's on-failure bucket")
    replay.add_argument("--prefix", default="", help="only objects under this prefix")
    replay.add_argument("--dry-run", action="store_true", help="say what would be replayed; change nothing")
    replay.add_argument("--max-redrives", type=int, default=3, help="leave records redriven this often (3)")
    return parser.parse_args(argv)


def _say(text: str) -> None:
    print(f"orders-dlq: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        return _run(args)
    except (KafkaAuthError, KafkaException) as exc:
        # A refused login or certificate surfaces from whichever client call met it first (the admin client's
        # future, a watermark query, a transaction): retrying cannot help, so say what to check and stop.
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        why = str(exc) if isinstance(exc, KafkaAuthError) else (refusal(error) if error is not None else None)
        if why is None:
            raise
        _say(why)
        return 2


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    cluster = f"Kafka cluster {settings.kafka_bootstrap_servers}"
    now = datetime.now(UTC)
    if args.command == "replay-failed":
        where = settings.aws_endpoint_url or f"AWS S3 ({settings.aws_region})"
        _say(f"acting on S3 bucket {args.bucket} (prefix {args.prefix!r}) at {where} and {cluster}")
        ledger = Ledger(settings).load()
        replayer = None if args.dry_run else Replayer(settings, ledger)
        replay_report = replay_failed(
            settings, s3_client(settings), args.bucket, args.prefix, replayer, ledger, args.max_redrives
        )
        if replayer is not None:
            replayer.close()
        print(json.dumps({"dry_run": args.dry_run, **replay_report.as_dict()}, indent=2))
        return 1 if replay_report.failed else 0
    mailbox = dead_letter_mailbox(settings, hold_s=args.hold_s)
    _say(f"acting on {mailbox.describe()} and {cluster}")
    reading = Reading(mailbox, args.hold_s)
    try:
        if args.command == "peek":
            ledger = Ledger(settings).load()  # for each letter's redrive count
            for page in reading.pages(limit=args.max):
                for received in page:
                    print(json.dumps(peek_view(Letter.of(received, ledger)), ensure_ascii=False))
            return 0
        if args.command == "stats":
            tally = Tally()
            for page in reading.pages():
                for received in page:
                    tally.add(Letter.of(received))
            print(json.dumps(tally.as_dict(now), indent=2))
            return 0
        selection = Selection(
            reasons=frozenset(args.reason),
            since=parse_since(args.since, now) if args.since else None,
            limit=args.max,
            include_conflicts=args.include_conflicts,
            max_redrives=args.max_redrives,
        )
        ledger = Ledger(settings).load()
        replayer = None if args.dry_run else Replayer(settings, ledger)
        report = redrive(settings, reading, replayer, ledger, selection)
        if replayer is not None:
            replayer.close()
    finally:
        reading.finish()
        mailbox.close()
    print(
        json.dumps(
            {
                "dry_run": args.dry_run,
                "letters_at_start": reading.snapshot,
                **report.as_dict(),
                "not_released": reading.not_released,
            },
            indent=2,
        )
    )
    return 1 if report.failed or report.not_deleted else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
