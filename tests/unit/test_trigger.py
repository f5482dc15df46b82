"""The trigger's delivery thread in isolation: what it commits and what happens when it breaks."""

from __future__ import annotations

import threading
from typing import Any

from orders_core.kafka_event import KafkaRecord
from orders_core.trigger import PartitionWorker, accepted_prefix

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
    worker = PartitionWorker(trigger, ("orders", 0))  # type: ignore[arg-type]
    worker.batches.put(RECORDS)
    assert trigger.failed.wait(10)
    assert isinstance(trigger.failure, MemoryError)
    worker.stop()


def test_commits_stop_before_the_first_failed_record() -> None:
    assert accepted_prefix(RECORDS, {("orders-0", 2), ("orders-0", 4)}) == 2
    assert accepted_prefix(RECORDS, set()) == 5
    assert accepted_prefix(RECORDS, {("orders-0", 0)}) == 0
