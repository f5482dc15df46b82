"""The ingest core with fake adapters: every record ends stored, dead-lettered or failed for redelivery."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from typing import Any

import pytest

from orders_core.adapters.letters import encode_letter
from orders_core.domain import ingest as ingest_module
from orders_core.domain.ingest import IngestService, check_record
from orders_core.domain.model import ValidOrder
from orders_core.domain.ports import (
    DeadLetter,
    KafkaRecord,
)
from tests.fakes import FakeCacheWriter, FakeDeadLetterSink, FakeOrderStorage
from tests.support.hostile import HOSTILE, duplicate_first

Parts = tuple[FakeOrderStorage, FakeDeadLetterSink, FakeCacheWriter]


def record(value: bytes, offset: int = 0) -> KafkaRecord:
    return KafkaRecord("orders", 0, offset, 0, b"key", value)


@pytest.fixture
def parts() -> Parts:
    return FakeOrderStorage(), FakeDeadLetterSink(), FakeCacheWriter()


def service(parts: Parts) -> IngestService:
    return IngestService(*parts)


def records_of(*orders: dict[str, Any]) -> list[KafkaRecord]:
    return [record(json.dumps(order).encode(), offset) for offset, order in enumerate(orders)]


def test_poison_records_are_dead_lettered_with_reasons_and_the_rest_stored(parts: Parts, make_order: Any) -> None:
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


def test_conflicting_order_is_dead_lettered_not_stored_over(parts: Parts, make_order: Any) -> None:
    store, queue, _ = parts
    first = make_order()
    changed = {**first, "entry": "OTHER"}
    report = service(parts).ingest([record(json.dumps(first).encode()), record(json.dumps(changed).encode(), 1)])
    assert report.dead_lettered == 1 and queue.letters[0].reason == "conflict"
    assert json.loads(store.orders[first["order_uid"]])["entry"] == first["entry"]


@pytest.mark.parametrize(
    ("down", "stored", "failed"),
    [("store", 0, [0, 1]), ("queue", 1, [1])],
    ids=["store down: the whole batch", "queue down: only the refused record"],
)
def test_a_dependency_down_fails_the_records_that_need_it_and_dead_letters_nothing(
    parts: Parts,
    make_order: Any,
    down: str,
    stored: int,
    failed: list[int],
) -> None:
    store, queue, _ = parts
    (store if down == "store" else queue).down = True
    records = [record(json.dumps(make_order()).encode()), record(b"garbage", 1)]
    report = service(parts).ingest(records)
    assert report.stored == stored and report.failed == [records[i] for i in failed] and queue.letters == []
    assert report.as_dict()["batchItemFailures"] == [
        {"itemIdentifier": {"partition": "orders-0", "offset": i}} for i in failed
    ]


def test_cache_failure_never_fails_the_ingest(make_order: Any) -> None:
    store, queue = FakeOrderStorage(), FakeDeadLetterSink()
    ingest = IngestService(store, queue, FakeCacheWriter(fail=True))
    report = ingest.ingest([record(json.dumps(make_order()).encode())])
    assert report.stored == 1 and report.failed == []


def test_an_order_the_store_refuses_is_dead_lettered_and_the_rest_stored(parts: Parts, make_order: Any) -> None:
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
    order.update({f"unknown_{i}": "x" * 1000 for i in range(80)})
    huge = json.dumps({**order, "padding": "x" * 2_000_000}).encode()
    letter = check_record(KafkaRecord("orders", 0, 0, 0, b"k" * 100_000, huge))
    assert isinstance(letter, DeadLetter) and len(letter.errors) == 50
    body = json.loads(encode_letter(letter))
    assert len(encode_letter(letter).encode()) < 256 * 1024
    assert body["error_count"] == len(letter.errors) and len(body["errors"]) == 50
    assert body["value_truncated"] and body["key_truncated"]
    assert body["value_sha256"] == hashlib.sha256(huge).hexdigest()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "not_json"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "not_json"),
        (b"", "not_json"),
        (b"null", "not_object"),
    ],
)
def test_pathological_values_become_dead_letters_not_crashes(value: bytes, reason: str) -> None:
    letter = check_record(KafkaRecord("orders", 0, 0, 0, None, value))
    assert isinstance(letter, DeadLetter) and letter.reason == reason


@pytest.mark.parametrize(("hostile", "reason"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_record_is_dead_lettered_and_the_order_behind_it_stored(
    parts: Parts, make_order: Any, hostile: Any, reason: str
) -> None:
    store, queue, _ = parts
    good = make_order()
    report = service(parts).ingest([record(hostile(make_order()), 0), record(json.dumps(good).encode(), 1)])
    assert (report.stored, report.dead_lettered, report.failed) == (1, 1, [])
    [letter] = queue.letters
    assert (letter.offset, letter.reason) == (0, reason)
    assert set(store.orders) == {good["order_uid"]}
    body = encode_letter(letter)
    assert body.isascii() and len(body) <= 256 * 1024


def test_a_duplicate_key_names_the_key_and_no_uid(parts: Parts, make_order: Any) -> None:
    _, queue, _ = parts
    order = make_order()
    service(parts).ingest([record(duplicate_first(order))])
    [letter] = queue.letters
    assert letter.reason == "invalid" and letter.order_uid is None
    assert letter.errors[0] == {"field": "order_uid", "message": "appears more than once in one object: ambiguous"}


def test_an_unexpected_exception_while_checking_is_an_internal_dead_letter(
    parts: Parts,
    make_order: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(raw: bytes) -> ValidOrder:
        raise RuntimeError("a rule failed")

    _, queue, _ = parts
    monkeypatch.setattr(ingest_module, "parse_order", explode)
    report = service(parts).ingest(records_of(make_order(), make_order()))
    assert report.failed == [] and report.dead_lettered == 2
    assert {(letter.reason, letter.message) for letter in queue.letters} == {
        ("internal", "the record could not be checked: RuntimeError")
    }


def test_every_order_refused_alike_fails_the_batch_instead_of_dead_lettering_it(parts: Parts, make_order: Any) -> None:
    """GIVEN a store that refuses every order with the same SQLSTATE (say a constraint added by mistake)
    WHEN a batch arrives THEN its records are failed for redelivery and nothing is dead-lettered."""
    store, queue, _ = parts
    store.refuse_all_with = "23514"
    records = records_of(make_order(), make_order(), make_order())
    report = service(parts).ingest(records)
    assert report.failed == records and queue.letters == [] and store.orders == {}


def test_a_lone_order_refused_like_any_order_is_retried_not_dead_lettered(parts: Parts, make_order: Any) -> None:
    """GIVEN a store that refuses every order alike WHEN a batch of one arrives (a quiet partition)
    THEN it is failed for redelivery, as a bigger batch would be: the store is at fault, not the order."""
    store, queue, _ = parts
    store.refuse_all_with = "23514"
    records = records_of(make_order())
    report = service(parts).ingest(records)
    assert report.failed == records and queue.letters == []


def test_orders_refused_alike_for_their_own_content_are_dead_lettered_not_held(parts: Parts, make_order: Any) -> None:
    """GIVEN a store that refuses some orders for their content WHEN a batch holds only such orders (the tail of a
    quiet partition) THEN a known-good order is taken, so they are dead-lettered: the partition goes on."""
    store, queue, _ = parts
    store.refused_customer = "refused"
    records = records_of(make_order(customer_id="refused"), make_order(customer_id="refused"))
    report = service(parts).ingest(records)
    assert report.failed == [] and [letter.reason for letter in queue.letters] == ["store_rejected"] * 2


def test_a_slow_order_is_split_out_and_redelivered_while_the_rest_is_stored(parts: Parts, make_order: Any) -> None:
    """GIVEN a store where any statement holding one slow order times out WHEN a batch of 8 holds it
    THEN the batch is halved down to that order, which is failed (never dead-lettered); the 7 others are stored."""
    store, queue, _ = parts
    store.slow_customers = {"slow"}
    orders = [make_order() for _ in range(8)]
    orders[5] = make_order(customer_id="slow")
    records = records_of(*orders)
    report = service(parts).ingest(records)
    assert report.failed == [records[5]] and report.stored == 7 and queue.letters == []
    assert "timeout" in (report.failure or "")
    assert store.statements == [8, 4, 4, 2, 1, 1, 2]  # log2(8) + 1 timeouts, then the half after the slow one


def test_a_second_order_timing_out_alone_gives_back_every_order_not_tried(parts: Parts, make_order: Any) -> None:
    """GIVEN a store too slow for even one order WHEN a batch arrives THEN after two single orders time out
    the rest is failed at once (not one timeout per order), and nothing is dead-lettered."""
    store, queue, _ = parts
    store.slow_customers = {"slow"}
    records = records_of(*[make_order(customer_id="slow") for _ in range(16)])
    report = service(parts).ingest(records)
    assert report.failed == records and queue.letters == []
    assert len(store.statements) == 6  # 16, 8, 4, 2, 1, 1


def test_queue_refusing_some_letters_fails_only_their_records(parts: Parts, make_order: Any) -> None:
    _, queue, _ = parts
    queue.takes = 1
    records = [record(b"junk", 0), record(json.dumps(make_order()).encode(), 1), record(b"junk", 2)]
    report = service(parts).ingest(records)
    assert report.stored == 1 and report.dead_lettered == 1 and report.failed == [records[2]]


def test_a_refused_record_behind_a_failed_one_is_failed_too_not_dead_lettered_twice(
    parts: Parts, make_order: Any
) -> None:
    """GIVEN an order that times out at offset 1 WHEN junk is at offsets 0 and 2 of its partition THEN the
    junk at 0 is dead-lettered; the junk at 2 is failed, since the redelivery from offset 1 brings it again."""
    store, queue, _ = parts
    store.slow_customers = {"slow"}
    records = [record(b"junk", 0), record(json.dumps(make_order(customer_id="slow")).encode(), 1), record(b"junk", 2)]
    report = service(parts).ingest(records)
    assert [letter.offset for letter in queue.letters] == [0] and report.failed == records[1:]


def test_a_hostile_value_costs_memory_in_proportion_to_itself_not_to_the_errors_it_could_list(
    make_order: Any,
) -> None:
    """1.2 MB of unknown keys once cost 100,000 listed errors and hundreds of megabytes: the first few are
    listed, the rest counted, and the memory is about that of reading the value once."""
    order = make_order()
    hostile = json.dumps({**order, **{f"k{i:06d}": 0 for i in range(120_000)}}, separators=(",", ":")).encode()
    assert len(hostile) > 1_200_000
    tracemalloc.start()
    try:
        letter = check_record(KafkaRecord("orders", 0, 0, 0, None, hostile))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(letter, DeadLetter) and letter.reason == "invalid"
    assert len(letter.errors) == 50 and letter.errors[0] == {
        "field": "k000000",
        "message": "Extra inputs are not permitted",
    }
    assert "120000 errors" in letter.message
    assert peak < 25 * len(hostile)  # was 80 times its size, in Python objects alone


@pytest.mark.parametrize("items", [[{}] * 300_000, [{"unknown": 1}] * 1000])
def test_refused_items_are_reported_from_the_first_not_listed_one_by_one(make_order: Any, items: list[Any]) -> None:
    letter = check_record(KafkaRecord("orders", 0, 0, 0, None, json.dumps({**make_order(), "items": items}).encode()))
    assert isinstance(letter, DeadLetter) and letter.reason == "invalid"
    assert 1 <= len(letter.errors) <= 12
    assert all(error["field"].startswith("items") for error in letter.errors)
