"""The trigger's delivery thread in isolation: what it commits and what happens when it breaks."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from prometheus_client import generate_latest

from orders_core.domain.ports import KafkaRecord
from orders_local.trigger import PartitionWorker, accepted_prefix, answer_excerpt
from orders_local.trigger_status import TriggerStatus, lags_of

RECORDS = [KafkaRecord("orders", 0, offset, 0, None, b"{}") for offset in range(5)]


class FakeTrigger:
    def __init__(self, delivery: Any) -> None:
        self.delivery = delivery
        self.failed = threading.Event()
        self.failure: BaseException | None = None

    def deliver_batch(self, batch: list[KafkaRecord], worker: PartitionWorker) -> int:
        return int(self.delivery(batch))

    def fail(self, exc: BaseException) -> None:
        self.failure = exc
        self.failed.set()


def test_a_delivery_thread_that_breaks_stops_the_trigger_instead_of_dying_silently() -> None:
    """GIVEN a delivery that raises something unforeseen WHEN the worker runs it THEN the trigger is told
    (it stops and exits non-zero) rather than the partition going quiet forever."""

    def broken(_: list[KafkaRecord]) -> int:
        raise MemoryError("unforeseen")

    trigger = FakeTrigger(broken)
    worker = PartitionWorker(trigger, ("orders", 0), 100)  # type: ignore[arg-type]
    worker.batches.offer(RECORDS)
    assert trigger.failed.wait(10)
    assert isinstance(trigger.failure, MemoryError)
    worker.stop()


def test_commits_stop_before_the_first_failed_record() -> None:
    assert accepted_prefix(RECORDS, {("orders-0", 2), ("orders-0", 4)}) == 2
    assert accepted_prefix(RECORDS, set()) == 5
    assert accepted_prefix(RECORDS, {("orders-0", 0)}) == 0


def test_lag_is_read_per_partition_from_librdkafka_statistics_and_unknown_stays_unknown() -> None:
    """librdkafka lists an internal partition -1 and says -1 for a lag it cannot compute: with nothing committed
    the lag is the whole partition (consuming starts at its first offset), else unknown."""
    never_committed = {"consumer_lag": -1, "committed_offset": -1001, "lo_offset": 10, "ls_offset": 30}
    partitions = {"0": {"consumer_lag": 7}, "1": {"consumer_lag": -1}, "2": never_committed, "-1": {"consumer_lag": -1}}
    statistics = {"topics": {"orders": {"partitions": partitions}, "other": {"partitions": {"0": {"consumer_lag": 9}}}}}
    assert lags_of(statistics, "orders") == {0: 7, 1: None, 2: 20}
    assert lags_of({}, "orders") == {}


def test_a_partition_committed_before_this_trigger_shows_that_commit_until_its_own() -> None:
    status = TriggerStatus("orders")
    status.assign([("orders", 0)])
    status.statistics(json.dumps({"topics": {"orders": {"partitions": {"0": {"committed_offset": 40}}}}}))
    assert status.as_json()["partitions"]["orders-0"]["committed_offset"] == 40
    status.committed(("orders", 0), 45)
    status.statistics(json.dumps({"topics": {"orders": {"partitions": {"0": {"committed_offset": 44}}}}}))
    assert status.as_json()["partitions"]["orders-0"]["committed_offset"] == 45  # its own confirmed commit


def test_a_revoked_partition_leaves_status_and_metrics_at_once() -> None:
    status = TriggerStatus("orders")
    status.assign([("orders", 0), ("orders", 1)])
    status.committed(("orders", 1), 42)
    status.set_retrying(("orders", 1), True)
    status.statistics(json.dumps({"topics": {"orders": {"partitions": {"0": {"consumer_lag": 3}}}}}))
    assert status.as_json()["retrying"] == ["orders-1"]
    assert status.as_json()["partitions"]["orders-0"]["lag"] == 3
    status.unassign([("orders", 1)])
    status.committed(("orders", 1), 50)  # a late commit answer for a partition no longer ours
    assert status.as_json()["assigned"] == ["orders-0"] and status.as_json()["retrying"] == []
    metrics = generate_latest(status.registry).decode()
    assert 'orders_trigger_consumer_lag{partition="0",topic="orders"} 3.0' in metrics
    assert 'partition="1"' not in metrics


def test_lag_in_seconds_is_the_age_of_the_oldest_record_consumed_and_not_committed() -> None:
    status = TriggerStatus("orders")
    status.assign([("orders", 0)])
    status.statistics(json.dumps({"topics": {"orders": {"partitions": {"0": {"consumer_lag": 0}}}}}))
    assert status.as_json()["partitions"]["orders-0"]["lag_seconds"] == 0  # caught up, nothing waiting
    # GIVEN records produced 30, 20 and 10 seconds ago, consumed (one of them twice, across a rebalance)
    now = time.time()
    status.consumed(("orders", 0), [(10, now - 30), (11, now - 20)])
    status.consumed(("orders", 0), [(11, now - 20), (12, now - 10)])
    lag = status.as_json()["partitions"]["orders-0"]["lag_seconds"]
    assert 30 <= lag < 40
    # WHEN the first two are committed THEN the third is the oldest waiting
    status.committed(("orders", 0), 12)
    assert 10 <= status.as_json()["partitions"]["orders-0"]["lag_seconds"] < 20
    metrics = generate_latest(status.registry).decode()
    assert 'orders_trigger_consumer_lag_seconds{partition="0",topic="orders"}' in metrics
    status.committed(("orders", 0), 13)
    assert status.as_json()["partitions"]["orders-0"]["lag_seconds"] == 0


def test_lag_in_seconds_is_unknown_while_records_wait_unconsumed() -> None:
    status = TriggerStatus("orders")
    status.assign([("orders", 0)])
    status.statistics(json.dumps({"topics": {"orders": {"partitions": {"0": {"consumer_lag": 500}}}}}))
    assert status.as_json()["partitions"]["orders-0"]["lag_seconds"] is None
    assert "orders_trigger_consumer_lag_seconds{" not in generate_latest(status.registry).decode()


def test_a_failed_trigger_says_why_in_its_health_and_status_and_the_first_reason_stays() -> None:
    status = TriggerStatus("orders")
    assert status.health() == (200, {"status": "ok"}) and status.as_json()["failure"] is None
    status.fail("ConsumerFailed: fenced")
    status.fail("RuntimeError: what followed")
    assert status.health() == (503, {"status": "failed", "failure": "ConsumerFailed: fenced"})
    assert status.as_json()["failure"] == "ConsumerFailed: fenced"


def test_an_answer_quoted_in_the_log_stays_on_one_line_whatever_it_holds() -> None:
    """A body with a newline and a forged log line in it (LOG_FORMAT=text writes the message as it is)."""
    body = '{"error": "x"}\n2026-01-01 INFO orders_local.trigger: forged\r\u2028\x85é'.encode() + b"\xff"
    excerpt = answer_excerpt(body)
    assert excerpt.isascii() and excerpt.isprintable() and len(excerpt.splitlines()) == 1
    assert excerpt.startswith('{"error": "x"}\\n2026-01-01 INFO')
    assert len(answer_excerpt(b"x" * 1000)) == 300


def test_records_consumed_in_slices_while_a_batch_is_in_flight_go_out_in_whole_batches() -> None:
    """GIVEN a batch in flight WHEN a backlog arrives in slices smaller than a batch (as consume() returns it,
    spread over the partitions) THEN the slices join the batches waiting, up to the batch size, in order:
    a backlog costs as few invocations as the platform would make."""
    released = threading.Event()
    delivered: list[list[int]] = []

    def deliver(batch: list[KafkaRecord]) -> int:
        delivered.append([record.offset for record in batch])
        released.wait(10)
        return len(batch)

    worker = PartitionWorker(FakeTrigger(deliver), ("orders", 0), 4)  # type: ignore[arg-type]
    backlog = [KafkaRecord("orders", 0, offset, 0, None, b"{}") for offset in range(14)]
    assert worker.batches.offer(backlog[:1]) == 1
    while not delivered:  # the first record is in flight alone
        time.sleep(0.01)
    pending: list[KafkaRecord] = []
    for start in range(1, 14, 3):  # as the consumer hands over what each consume() returned
        pending += backlog[start : start + 3]
        del pending[: worker.batches.offer(pending)]
    assert [record.offset for record in pending] == [9, 10, 11, 12, 13], "two whole batches wait, no more"
    released.set()
    while sum(map(len, delivered)) < 9:
        time.sleep(0.01)
    assert delivered == [[0], [1, 2, 3, 4], [5, 6, 7, 8]]
    worker.stop()
