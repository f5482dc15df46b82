"""The ingest service: Kafka records in, orders stored, refused records dead-lettered with the reason.

Nothing is dropped: a record is either stored (or found already stored), dead-lettered, or reported as
failed so the platform redelivers it. What a record holds can only ever make that record a dead letter;
only the infrastructure (PostgreSQL, SQS) can fail records. A cache failure never fails the ingest.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from orders_core.domain.model import (
    DuplicateKey,
    ValidOrder,
    beyond_any_order,
    describe_errors,
    parse_order,
    read_json,
    structural_errors,
)
from orders_core.domain.ports import (
    DeadLetter,
    DeadLetterSink,
    DeadLetterUnavailable,
    KafkaRecord,
    OrderCacheWriter,
    OrderStorage,
    StoreOutcome,
    StoreRejected,
    StoreTimeout,
    StoreUnavailable,
)
from orders_core.domain.probe import known_good_order

log = logging.getLogger(__name__)

Valid = list[tuple[KafkaRecord, ValidOrder]]
Letters = list[tuple[KafkaRecord, DeadLetter]]
Refused = tuple[KafkaRecord, ValidOrder, StoreRejected]


@dataclass(slots=True)
class IngestReport:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: list[KafkaRecord] = field(default_factory=list)
    failure: str | None = None
    # The letters sent: how many for each reason, and which record each was (for the invocation's log line).
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    dead_letters: list[tuple[KafkaRecord, str]] = field(default_factory=list)

    def batch_response(self) -> dict[str, object]:
        """AWS's partial batch response, alone: what Lambda's event source mapping reads (the counts are logged)."""
        return {"batchItemFailures": [{"itemIdentifier": r.item_identifier} for r in self.failed]}

    def as_dict(self) -> dict[str, object]:
        """The partial batch response with the counts: the local HTTP entry's answer, for people and tests."""
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            **self.batch_response(),
            **({"error": self.failure} if self.failure else {}),
        }


@dataclass(slots=True)
class StoredBatch:
    """What storing a batch came to: each order's outcome, the orders refused, the records to redeliver."""

    outcomes: list[tuple[KafkaRecord, ValidOrder, StoreOutcome]] = field(default_factory=list)
    letters: Letters = field(default_factory=list)
    redeliver: list[KafkaRecord] = field(default_factory=list)
    failure: str | None = None


def dead_letter(
    record: KafkaRecord,
    reason: str,
    message: str,
    errors: list[dict[str, str]] | None = None,
    order_uid: str | None = None,
) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        message=message,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        errors=errors or [],
        order_uid=order_uid,
        headers=record.headers,
    )


def check_record(record: KafkaRecord) -> ValidOrder | DeadLetter:
    """The order a record holds, or the dead letter saying why it holds none. Never raises."""
    try:
        return _check(record)
    except Exception as exc:  # a parser or rule that fails must not stop the partition behind this record
        log.exception("checking the record at %s failed unexpectedly", record.label)
        return dead_letter(record, "internal", f"the record could not be checked: {exc.__class__.__name__}")


def _check(record: KafkaRecord) -> ValidOrder | DeadLetter:
    raw = record.value or b""
    if beyond_any_order(raw):  # so many keys or entries that listing the model's errors would cost more than the value
        screened = _screened(record, raw)
        if screened is not None:
            return screened
    try:
        return parse_order(raw)  # the common case: one read by msgspec, which writes the canonical JSON too
    except ValidationError as exc:
        validation_error: ValidationError | None = exc
    except DuplicateKey:
        validation_error = None
    return _refusal(record, raw, validation_error)


def _screened(record: KafkaRecord, raw: bytes) -> DeadLetter | None:
    """The dead letter of a value with keys or items no order has (its first few named), else None: the model
    then has at most as many errors to list as an order has fields."""
    read = _document(record, raw, strict=False)
    if isinstance(read, DeadLetter):
        return read
    document, _ = read
    listed, found = structural_errors(document)
    if not found:
        return None
    uid = document.get("order_uid")
    return dead_letter(
        record,
        "invalid",
        f"order failed validation ({found} errors, the first {len(listed)} listed)",
        listed,
        order_uid=uid if isinstance(uid, str) else None,
    )


def _document(
    record: KafkaRecord, raw: bytes, *, strict: bool = True
) -> tuple[dict[str, Any], DuplicateKey | None] | DeadLetter:
    """The value read as a JSON object (``strict``: empty when a key is doubled, with that key; else the C
    reader's plain reading, several times faster), or the dead letter saying why it is none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return dead_letter(record, "not_utf8", f"value is not UTF-8 text: {exc.reason} at byte {exc.start}")
    try:
        document = read_json(text) if strict else json.loads(text)
    except DuplicateKey as exc:
        return {}, exc
    except json.JSONDecodeError as exc:
        return dead_letter(record, "not_json", f"value is not JSON: {exc.msg} at line {exc.lineno} col {exc.colno}")
    except RecursionError:
        return dead_letter(record, "not_json", "value is JSON nested too deeply to read")
    if not isinstance(document, dict):
        return dead_letter(record, "not_object", f"value is JSON {type(document).__name__}, not an order object")
    return document, None


def _refusal(record: KafkaRecord, raw: bytes, validation_error: ValidationError | None) -> DeadLetter:
    """The most basic reason a refused record holds no order, for a dead letter a person can act on."""
    read = _document(record, raw)
    if isinstance(read, DeadLetter):
        return read
    document, duplicate = read
    errors = describe_errors(validation_error) if validation_error else []
    count = validation_error.error_count() if validation_error else 0
    if duplicate is not None:  # which of the values was meant is anyone's guess: no uid is named
        errors.insert(0, {"field": duplicate.key, "message": "appears more than once in one object: ambiguous"})
        count += 1
    uid = document.get("order_uid")
    return dead_letter(
        record,
        "invalid",
        f"order failed validation ({count} errors)",
        errors,
        order_uid=uid if isinstance(uid, str) else None,
    )


def _in_order(records: list[KafkaRecord]) -> list[KafkaRecord]:
    return sorted(records, key=lambda r: (r.topic, r.partition, r.offset))


def _behind_failures(letters: Letters, failed: list[KafkaRecord]) -> tuple[Letters, list[KafkaRecord]]:
    """The letters to send now, and the records to fail instead: those behind a failed record of their
    partition come again with its redelivery (a partition is committed up to its first failure), so sending
    their letters now would only send them twice."""
    first_failed: dict[tuple[str, int], int] = {}
    for record in failed:
        where = (record.topic, record.partition)
        first_failed[where] = min(record.offset, first_failed.get(where, record.offset))
    to_send: Letters = []
    held: list[KafkaRecord] = []
    for record, letter in letters:
        if record.offset > first_failed.get((record.topic, record.partition), record.offset):
            held.append(record)
        else:
            to_send.append((record, letter))
    return to_send, held


class IngestService:
    def __init__(self, store: OrderStorage, dead_letters: DeadLetterSink, cache: OrderCacheWriter) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._cache = cache

    def ingest(self, records: Sequence[KafkaRecord], request_id: str | None = None) -> IngestReport:
        """Store, dead-letter or fail each record; every letter names ``request_id``, the invocation that sent it."""
        report = IngestReport()
        valid: Valid = []
        letters: Letters = []
        for record in records:
            checked = check_record(record)
            if isinstance(checked, ValidOrder):
                valid.append((record, checked))
            else:
                letters.append((record, checked))

        try:
            batch = self._store_batch(valid)
        except StoreUnavailable as exc:
            log.warning("store unavailable, %d records to be redelivered: %s", len(records), exc)
            report.failed = list(records)
            report.failure = str(exc)
            return report
        letters += batch.letters
        report.failed, report.failure = batch.redeliver, batch.failure

        fresh: dict[str, bytes] = {}
        for record, order, outcome in batch.outcomes:
            if outcome is StoreOutcome.STORED:
                report.stored += 1
                fresh[order.order_uid] = order.canonical_json
            elif outcome is StoreOutcome.DUPLICATE:
                report.duplicates += 1
            else:
                message = f"order {order.order_uid} was stored before with other content; orders are immutable"
                letters.append((record, dead_letter(record, "conflict", message, order_uid=order.order_uid)))
        self._write_through(fresh)
        letters, held = _behind_failures(letters, report.failed)
        report.failed = _in_order([*report.failed, *held])
        self._send([(record, replace(letter, request_id=request_id)) for record, letter in letters], report)
        return report

    def _send(self, letters: Letters, report: IngestReport) -> None:
        unsent: set[int] = set()
        try:
            self._dead_letters.send([letter for _, letter in letters])
        except DeadLetterUnavailable as exc:
            unsent = {id(letter) for letter in exc.unsent}
            failed = [record for record, letter in letters if id(letter) in unsent]
            log.warning("dead-letter queue unavailable, %d records to be redelivered: %s", len(failed), exc)
            report.failed = _in_order([*report.failed, *failed])
            report.failure = str(exc)
        report.dead_letters = [(record, letter.reason) for record, letter in letters if id(letter) not in unsent]
        report.dead_lettered = len(report.dead_letters)
        report.dead_letter_reasons = Counter(reason for _, reason in report.dead_letters)

    def _store_batch(self, valid: Valid) -> StoredBatch:
        """Store the orders in as few statements as PostgreSQL allows.

        A batch that runs out of time is halved, and each half stored in turn: a slow order then costs its
        batch a few timeouts, not the whole batch forever. An order that times out alone is redelivered; after
        a second one the store itself is slow, and every order not tried yet is redelivered too.
        """
        batch = StoredBatch()
        pending = [valid] if valid else []  # chunks still to store, the next one last
        lone_timeouts = 0
        while pending:
            chunk = pending.pop()
            try:
                outcomes, letters = self._store_chunk(chunk)
            except StoreTimeout as exc:
                if len(chunk) > 1:
                    half = len(chunk) // 2
                    pending += [chunk[half:], chunk[:half]]
                    continue
                batch.redeliver += [record for record, _ in chunk]
                batch.failure = str(exc)
                lone_timeouts += 1
                if lone_timeouts == 2:  # the store itself is slow: give the rest back at once
                    batch.redeliver += [record for part in pending for record, _ in part]
                    pending = []
                continue
            batch.outcomes += outcomes
            batch.letters += letters
        batch.redeliver = _in_order(batch.redeliver)
        return batch

    def _store_chunk(self, chunk: Valid) -> tuple[list[tuple[KafkaRecord, ValidOrder, StoreOutcome]], Letters]:
        """Store a chunk. If PostgreSQL refuses it for its content, store its orders one by one: the one it
        refuses is dead-lettered, the rest are stored, and the partition never stalls behind it."""
        try:
            outcomes = self._store.store_orders([order for _, order in chunk])
            return [(record, order, outcome) for (record, order), outcome in zip(chunk, outcomes, strict=True)], []
        except StoreRejected as exc:
            if len(chunk) > 1:
                log.warning("PostgreSQL refused a batch of %d (%s); storing its orders one by one", len(chunk), exc)
                stored, refused = self._store_each(chunk)
            else:
                [(record, order)] = chunk
                stored, refused = [], [(record, order, exc)]
        if not stored and len({exc.sqlstate for *_, exc in refused}) == 1:
            self._unless_store_at_fault(refused[0][2])
        letters = [
            (record, dead_letter(record, "store_rejected", str(exc), order_uid=order.order_uid))
            for record, order, exc in refused
        ]
        return stored, letters

    def _store_each(self, chunk: Valid) -> tuple[list[tuple[KafkaRecord, ValidOrder, StoreOutcome]], list[Refused]]:
        stored: list[tuple[KafkaRecord, ValidOrder, StoreOutcome]] = []
        refused: list[Refused] = []
        for record, order in chunk:
            try:
                [outcome] = self._store.store_orders([order])
                stored.append((record, order, outcome))
            except StoreRejected as exc:
                refused.append((record, order, exc))
        return stored, refused

    def _unless_store_at_fault(self, refusal: StoreRejected) -> None:
        """Every order refused for one same reason: is the store at fault (a constraint or a trigger added by
        mistake), or are the orders? A known-good order, tried and rolled back, tells: refused alike, the
        store is at fault and every record is retried (StoreUnavailable); taken, the orders are dead-lettered,
        so two bad orders at the end of a quiet partition never hold it up."""
        probe = self._store.refusal_of(known_good_order())
        if probe is not None and probe.sqlstate == refusal.sqlstate:
            raise StoreUnavailable(f"PostgreSQL refuses any order alike, a known-good one included: {refusal}")

    def _write_through(self, fresh: dict[str, bytes]) -> None:
        try:
            self._cache.put_many(fresh)
        except Exception:  # the store is the truth; a lookup falls back to it
            log.warning("cache write-through failed for %d orders", len(fresh), exc_info=True)
