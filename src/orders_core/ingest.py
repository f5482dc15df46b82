"""The ingest service: Kafka records in, orders stored, refused records dead-lettered with the reason.

Nothing is dropped: a record is either stored (or found already stored), dead-lettered, or reported as
failed so the platform redelivers it. A cache failure never fails the ingest.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from .cache import OrderCache
from .dead_letters import DeadLetter, DeadLetterQueue, DeadLetterUnavailable
from .kafka_event import KafkaRecord
from .model import Order, describe_errors, parse_order
from .storage import OrderStore, StoreOutcome, StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestReport:
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: list[KafkaRecord] = field(default_factory=list)
    failure: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dead_lettered": self.dead_lettered,
            "batchItemFailures": [{"itemIdentifier": r.item_identifier} for r in self.failed],
            **({"error": self.failure} if self.failure else {}),
        }


def _dead_letter(record: KafkaRecord, reason: str, message: str, **extra: object) -> DeadLetter:
    return DeadLetter(
        reason=reason,
        message=message,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        **extra,  # type: ignore[arg-type]
    )


def check_record(record: KafkaRecord) -> Order | DeadLetter:
    """The order a record holds, or the dead letter saying why it holds none."""
    raw = record.value or b""
    try:
        return parse_order(raw)  # the common case: one parse, in pydantic's compiled core
    except ValidationError as exc:
        validation_error = exc
    except Exception as exc:  # a rule that failed unexpectedly must not stop the partition behind this record
        log.exception("validation failed unexpectedly at %s", record.label)
        return _dead_letter(record, "invalid", f"order could not be validated: {exc.__class__.__name__}")
    # Refused: find the most basic reason, for a dead letter a person can act on.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _dead_letter(record, "not_utf8", f"value is not UTF-8 text: {exc.reason} at byte {exc.start}")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return _dead_letter(record, "not_json", f"value is not JSON: {exc.msg} at line {exc.lineno} col {exc.colno}")
    except RecursionError:
        return _dead_letter(record, "not_json", "value is JSON nested too deeply to read")
    if not isinstance(document, dict):
        return _dead_letter(record, "not_object", f"value is JSON {type(document).__name__}, not an order object")
    errors = describe_errors(validation_error)
    uid = document.get("order_uid")
    return _dead_letter(
        record,
        "invalid",
        f"order failed validation ({len(errors)} errors)",
        errors=errors,
        order_uid=uid if isinstance(uid, str) else None,
    )


class IngestService:
    def __init__(self, store: OrderStore, dead_letters: DeadLetterQueue, cache: OrderCache) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._cache = cache

    def ingest(self, records: Sequence[KafkaRecord]) -> IngestReport:
        report = IngestReport()
        valid: list[tuple[KafkaRecord, Order]] = []
        letters: list[tuple[KafkaRecord, DeadLetter]] = []
        for record in records:
            checked = check_record(record)
            if isinstance(checked, Order):
                valid.append((record, checked))
            else:
                letters.append((record, checked))

        try:
            stored = self._store_batch(valid, letters)
        except StoreUnavailable as exc:
            log.warning("store unavailable, %d records to be redelivered: %s", len(records), exc)
            report.failed = list(records)
            report.failure = str(exc)
            return report

        fresh: dict[str, bytes] = {}
        for record, order, outcome in stored:
            if outcome is StoreOutcome.STORED:
                report.stored += 1
                fresh[order.order_uid] = order.to_json()
            elif outcome is StoreOutcome.DUPLICATE:
                report.duplicates += 1
            else:
                letters.append(
                    (
                        record,
                        _dead_letter(
                            record,
                            "conflict",
                            f"order {order.order_uid} was stored before with other content; orders are immutable",
                            order_uid=order.order_uid,
                        ),
                    )
                )
        self._write_through(fresh)

        try:
            self._dead_letters.send([letter for _, letter in letters])
            report.dead_lettered = len(letters)
        except DeadLetterUnavailable as exc:
            log.warning("dead-letter queue unavailable, %d records to be redelivered: %s", len(letters), exc)
            report.failed = [record for record, _ in letters]
            report.failure = str(exc)
        return report

    def _store_batch(
        self, valid: list[tuple[KafkaRecord, Order]], letters: list[tuple[KafkaRecord, DeadLetter]]
    ) -> list[tuple[KafkaRecord, Order, StoreOutcome]]:
        """Store the batch. If PostgreSQL refuses it for its content, store the orders one by one: the one it
        refuses is dead-lettered, the rest are stored, and the partition never stalls behind it."""
        try:
            outcomes = self._store.store_orders([order for _, order in valid])
            return [(record, order, outcome) for (record, order), outcome in zip(valid, outcomes, strict=True)]
        except StoreRejected:
            log.warning("PostgreSQL refused a batch of %d; storing its orders one by one", len(valid))
        stored = []
        for record, order in valid:
            try:
                [outcome] = self._store.store_orders([order])
            except StoreRejected as exc:
                letters.append((record, _dead_letter(record, "store_rejected", str(exc), order_uid=order.order_uid)))
                continue
            stored.append((record, order, outcome))
        return stored

    def _write_through(self, fresh: dict[str, bytes]) -> None:
        try:
            self._cache.put_many(fresh)
        except Exception:  # the store is the truth; a lookup falls back to it
            log.warning("cache write-through failed for %d orders", len(fresh), exc_info=True)
