"""``orders-trigger``: the local stand-in for the platform's Kafka event source mapping.

It consumes the orders topic in its own consumer group with manual commits, batches records (up to
``TRIGGER_BATCH_SIZE`` per invocation, waiting at most ``TRIGGER_BATCH_WINDOW_S``), POSTs the Lambda Kafka
event to the ingest function — one invocation at a time per partition, partitions in parallel, as the
platform does — and commits a partition's offset only past records the function accepted. Records the
function failed are retried with exponential backoff, forever: it never skips one. SIGTERM finishes the
batch in flight, commits, and exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import urllib3
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from .config import Settings, get_settings
from .kafka_event import KafkaRecord, build_event
from .logs import configure_logging

log = logging.getLogger("orders_core.trigger")
SLOW_DELIVERY_S = 30.0  # a partition's queue full this long: its deliveries are retrying
QUEUED_BATCHES = 2  # per partition, waiting behind the one in flight


def accepted_prefix(records: Sequence[KafkaRecord], failed_ids: set[str]) -> int:
    """How many records of one partition (in offset order) may be committed: those before the first failure."""
    for index, record in enumerate(records):
        if record.item_identifier in failed_ids:
            return index
    return len(records)


def record_of(message: Message) -> KafkaRecord:
    headers = cast(list[tuple[str, bytes | None]], message.headers() or [])
    return KafkaRecord(
        topic=cast(str, message.topic()),
        partition=cast(int, message.partition()),
        offset=cast(int, message.offset()),
        timestamp=message.timestamp()[1],
        key=message.key(),
        value=message.value(),
        headers=tuple((name, value or b"") for name, value in headers),
    )


class PartitionWorker:
    """Delivers one partition's batches in order, one invocation at a time, and marks what the function
    accepted for the consumer's thread to commit (librdkafka's synchronous commit hangs on another thread).

    Batches queue up (a few at most) while one is in flight, so consuming overlaps delivering.
    """

    def __init__(self, trigger: Trigger, topic: str, partition: int) -> None:
        self.trigger = trigger
        self.topic_partition = (topic, partition)
        self.batches: queue.Queue[list[KafkaRecord] | None] = queue.Queue(maxsize=QUEUED_BATCHES)
        self.cancelled = threading.Event()  # no more retries: the trigger stops or lost the partition
        self.thread = threading.Thread(target=self._run, name=f"deliver-{topic}-{partition}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.batches.get()) is not None:
            taken = self.trigger.deliver_batch(batch, self.cancelled)
            if taken:
                self.trigger.accepted(batch[taken - 1])
            if taken < len(batch):  # stopping: leave the rest (and what is queued) to be redelivered
                break

    def stop(self) -> None:
        """Drop the batches not yet started, let the invocation in flight finish, and wait for it."""
        self.cancelled.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self.batches.get_nowait()
        self.batches.put(None)
        self.thread.join()


class Trigger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=16,
            retries=False,
            timeout=urllib3.Timeout(connect=2.0, read=settings.trigger_request_timeout_s),
        )
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap_servers,
                "group.id": settings.kafka_group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "max.poll.interval.ms": 300_000,
                "fetch.wait.max.ms": 100,
            }
        )
        self.workers: dict[tuple[str, int], PartitionWorker] = {}
        self._to_commit: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def invoke(self, records: Sequence[KafkaRecord]) -> set[str]:
        """POST one batch to the ingest function; returns the identifiers of the records it did not take."""
        event = build_event(records, self.settings.kafka_bootstrap_servers)
        try:
            response = self._http.request(
                "POST",
                self.settings.ingest_url,
                body=json.dumps(event).encode(),
                headers={"Content-Type": "application/json"},
            )
        except urllib3.exceptions.HTTPError as exc:
            log.warning("ingest unreachable (%s); %d records to retry", exc, len(records))
            return {r.item_identifier for r in records}
        if response.status != 200:
            log.warning("ingest answered %s: %s", response.status, response.data[:300].decode(errors="replace"))
            return {r.item_identifier for r in records}
        try:
            answer: dict[str, Any] = json.loads(response.data)
            return {str(f["itemIdentifier"]) for f in answer.get("batchItemFailures") or ()}
        except (ValueError, TypeError, KeyError):
            log.warning("ingest answered 200 with an unreadable body; retrying the batch")
            return {r.item_identifier for r in records}

    def deliver_batch(self, batch: list[KafkaRecord], cancelled: threading.Event) -> int:
        """Invoke the function with one partition's batch, retrying what it failed with backoff until it is
        accepted or the trigger stops. Returns how many leading records were accepted."""
        accepted = 0
        delay = self.settings.trigger_retry_initial_s
        while accepted < len(batch):
            rest = batch[accepted:]
            taken = accepted_prefix(rest, self.invoke(rest))
            accepted += taken
            if taken == len(rest):
                continue
            if cancelled.is_set():
                break
            log.info("retrying %s-%d from offset %d in %.1fs", rest[taken].topic, rest[taken].partition,
                     rest[taken].offset, delay)  # fmt: skip
            if cancelled.wait(delay):
                break
            delay = min(delay * 2, self.settings.trigger_retry_max_s)
        return accepted

    def accepted(self, last_accepted: KafkaRecord) -> None:
        """Note a partition's offset as committable (the consumer's own thread commits it)."""
        with self._lock:
            self._to_commit[(last_accepted.topic, last_accepted.partition)] = last_accepted.offset + 1

    def commit(self, wait: bool = False) -> None:
        with self._lock:
            offsets = [
                TopicPartition(topic, partition, offset) for (topic, partition), offset in self._to_commit.items()
            ]
            self._to_commit.clear()
        if not offsets:
            return
        try:
            if wait:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. a rebalance: the records come again, storing them is harmless
            log.warning("commit failed, records will be redelivered: %s", exc)

    def dispatch(self, records: list[KafkaRecord]) -> None:
        """Hand each partition's records to its worker; waits (paused, still in the group) while it is busy."""
        by_partition: dict[tuple[str, int], list[KafkaRecord]] = defaultdict(list)
        for record in records:
            by_partition[(record.topic, record.partition)].append(record)
        paused = False
        for topic_partition, batch in by_partition.items():
            worker = self.workers.get(topic_partition)
            if worker is None:
                worker = self.workers[topic_partition] = PartitionWorker(self, *topic_partition)
            while not self.stopping.is_set():
                try:
                    worker.batches.put(batch, timeout=SLOW_DELIVERY_S if not paused else 0.5)
                    break
                except queue.Full:
                    # Deliveries are retrying: stop fetching, but poll to stay in the group. (Pausing drops
                    # what the client fetched ahead; it is fetched again after resume, nothing is skipped.)
                    if not paused:
                        self._consumer.pause(self._consumer.assignment())
                        paused = True
                    self._consumer.poll(0)
                    self.commit()
        if paused:
            self._consumer.resume(self._consumer.assignment())

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            worker = self.workers.pop((tp.topic, tp.partition), None)
            if worker is not None:
                worker.stop()
        self.commit(wait=True)  # what they finished, while the partitions are still ours

    def run(self) -> None:
        s = self.settings
        self._consumer.subscribe([s.kafka_topic], on_revoke=self._on_revoke)
        log.info("consuming %s as %s -> %s (batch %d, window %.2fs)", s.kafka_topic, s.kafka_group_id,
                 s.ingest_url, s.trigger_batch_size, s.trigger_batch_window_s)  # fmt: skip
        try:
            while not self.stopping.is_set():
                messages = self._consumer.consume(
                    num_messages=s.trigger_batch_size, timeout=max(s.trigger_batch_window_s, 0.01)
                )
                records = []
                for message in messages:
                    if message.error():
                        log.warning("consumer error: %s", message.error())
                        continue
                    records.append(record_of(message))
                if records:
                    self.dispatch(records)
                self.commit()
        finally:
            for worker in self.workers.values():
                worker.stop()
            self.commit(wait=True)
            self._consumer.close()
            log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    trigger = Trigger(get_settings())

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the batches in flight", signum)
        trigger.stopping.set()
        for worker in list(trigger.workers.values()):
            worker.cancelled.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    trigger.run()


if __name__ == "__main__":
    main(sys.argv[1:])
