"""The ingest core with fake adapters: every record ends stored, dead-lettered or failed for redelivery."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest

from orders_core.dead_letters import DeadLetter, DeadLetterUnavailable
from orders_core.ingest import IngestService, check_record
from orders_core.kafka_event import KafkaRecord
from orders_core.model import Order
from orders_core.storage import StoreOutcome, StoreRejected, StoreUnavailable


class FakeStore:
    def __init__(self) -> None:
        self.orders: dict[str, bytes] = {}
        self.down = False
        self.refused_customer: str | None = None

    def store_orders(self, orders: Sequence[Order]) -> list[StoreOutcome]:
        if self.down:
            raise StoreUnavailable("down")
        if any(order.customer_id == self.refused_customer for order in orders):
            raise StoreRejected("refused")
        outcomes = []
        for order in orders:
            document = order.to_json()
            known = self.orders.get(order.order_uid)
            if known is None:
                self.orders[order.order_uid] = document
                outcomes.append(StoreOutcome.STORED)
            else:
                outcomes.append(StoreOutcome.DUPLICATE if known == document else StoreOutcome.CONFLICT)
        return outcomes


class FakeQueue:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.down = False

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if self.down and letters:
            raise DeadLetterUnavailable("down")
        self.letters.extend(letters)


class FakeCache:
    def __init__(self, fail: bool = False) -> None:
        self.written: dict[str, bytes] = {}
        self.fail = fail

    def put_many(self, orders: dict[str, bytes]) -> None:
        if self.fail:
            raise ConnectionError("memcached down")
        self.written.update(orders)


def record(value: bytes, offset: int = 0) -> KafkaRecord:
    return KafkaRecord("orders", 0, offset, 0, b"key", value)


@pytest.fixture
def parts() -> tuple[FakeStore, FakeQueue, FakeCache]:
    return FakeStore(), FakeQueue(), FakeCache()


def service(parts: tuple[FakeStore, FakeQueue, FakeCache]) -> IngestService:
    return IngestService(*parts)  # type: ignore[arg-type]


def test_poison_records_are_dead_lettered_with_reasons_and_the_rest_stored(
    parts: tuple[FakeStore, FakeQueue, FakeCache], make_order: Any
) -> None:
    store, queue, cache = parts
    good = make_order()
    wrong_type = make_order(sm_id="99")
    values = [b"\xff\xfe", b"{not json", b"[1,2]", json.dumps(good).encode(), json.dumps(wrong_type).encode()]
    report = service(parts).ingest([record(v, i) for i, v in enumerate(values)])
    assert (report.stored, report.dead_lettered, report.failed) == (1, 4, [])
    assert [letter.reason for letter in queue.letters] == ["not_utf8", "not_json", "not_object", "invalid"]
    assert queue.letters[3].errors == [{"field": "sm_id", "message": "Input should be a valid integer"}]
    assert queue.letters[3].order_uid == wrong_type["order_uid"]
    assert [letter.offset for letter in queue.letters] == [0, 1, 2, 4]
    assert queue.letters[0].value == b"\xff\xfe"  # the raw value travels with the letter
    assert set(store.orders) == set(cache.written) == {good["order_uid"]}


def test_conflicting_order_is_dead_lettered_not_stored_over(
    parts: tuple[FakeStore, FakeQueue, FakeCache], make_order: Any
) -> None:
    store, queue, _ = parts
    first = make_order()
    changed = {**first, "entry": "OTHER"}
    report = service(parts).ingest([record(json.dumps(first).encode()), record(json.dumps(changed).encode(), 1)])
    assert report.dead_lettered == 1 and queue.letters[0].reason == "conflict"
    assert json.loads(store.orders[first["order_uid"]])["entry"] == first["entry"]


def test_store_down_fails_the_whole_batch_and_sends_nothing(
    parts: tuple[FakeStore, FakeQueue, FakeCache], make_order: Any
) -> None:
    store, queue, _ = parts
    store.down = True
    records = [record(json.dumps(make_order()).encode()), record(b"garbage", 1)]
    report = service(parts).ingest(records)
    assert report.failed == records and queue.letters == []
    assert report.as_dict()["batchItemFailures"] == [
        {"itemIdentifier": {"partition": "orders-0", "offset": 0}},
        {"itemIdentifier": {"partition": "orders-0", "offset": 1}},
    ]


def test_queue_down_fails_only_the_refused_records(
    parts: tuple[FakeStore, FakeQueue, FakeCache], make_order: Any
) -> None:
    _, queue, _ = parts
    queue.down = True
    records = [record(json.dumps(make_order()).encode()), record(b"garbage", 1)]
    report = service(parts).ingest(records)
    assert report.stored == 1 and report.failed == [records[1]]


def test_cache_failure_never_fails_the_ingest(make_order: Any) -> None:
    store, queue = FakeStore(), FakeQueue()
    ingest = IngestService(store, queue, FakeCache(fail=True))  # type: ignore[arg-type]
    report = ingest.ingest([record(json.dumps(make_order()).encode())])
    assert report.stored == 1 and report.failed == []


def test_an_order_the_store_refuses_is_dead_lettered_and_the_rest_stored(
    parts: tuple[FakeStore, FakeQueue, FakeCache], make_order: Any
) -> None:
    store, queue, _ = parts
    store.refused_customer = "refused"
    orders = [make_order(), make_order(customer_id="refused"), make_order()]
    report = service(parts).ingest([record(json.dumps(o).encode(), i) for i, o in enumerate(orders)])
    assert (report.stored, report.dead_lettered, report.failed) == (2, 1, [])
    assert [(letter.reason, letter.offset) for letter in queue.letters] == [("store_rejected", 1)]
    assert set(store.orders) == {orders[0]["order_uid"], orders[2]["order_uid"]}


def test_a_dead_letter_always_fits_in_one_sqs_message(make_order: Any) -> None:
    """Else the queue refuses it and the records behind it wait forever."""
    order = make_order()
    order["items"] = [dict(order["items"][0], sale=500, status=-1, price=-1, name="") for _ in range(1000)]
    huge = json.dumps({**order, "padding": "x" * 2_000_000}).encode()
    letter = check_record(KafkaRecord("orders", 0, 0, 0, b"k" * 100_000, huge))
    assert isinstance(letter, DeadLetter) and len(letter.errors) > 1000
    body = json.loads(letter.to_message())
    assert len(letter.to_message().encode()) < 256 * 1024
    assert body["error_count"] == len(letter.errors) and len(body["errors"]) == 50
    assert body["value_truncated"] and body["key_truncated"]
    assert body["value_sha256"] == hashlib.sha256(huge).hexdigest()


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"[" * 200_000 + b"]" * 200_000, "not_json"), (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not_json"),
     (b"", "not_json"), (b"null", "not_object")],
)  # fmt: skip
def test_pathological_values_become_dead_letters_not_crashes(value: bytes, reason: str) -> None:
    letter = check_record(KafkaRecord("orders", 0, 0, 0, None, value))
    assert isinstance(letter, DeadLetter) and letter.reason == reason
