"""``orders-trigger``: the local stand-in for the platform's Kafka event source mapping.

It consumes the orders topic in its own consumer group with manual commits, batches records (up to
``TRIGGER_BATCH_SIZE`` per invocation, waiting at most ``TRIGGER_BATCH_WINDOW_S``), POSTs the Lambda Kafka
event to the ingest function — one invocation at a time per partition, partitions in parallel, as the
platform does — and commits a partition's offset only past records the function accepted. Records the
function failed are retried with exponential backoff, forever: it never skips one. SIGTERM finishes the
batch in flight, commits, and exits.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, cast

import urllib3
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from .config import Settings, get_settings
from .kafka_event import KafkaRecord, build_event
from .logs import configure_logging

log = logging.getLogger("orders_core.trigger")
SLOW_DELIVERY_S = 30.0


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


class Trigger:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stopping = threading.Event()
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=8,
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
                "fetch.min.bytes": 1,
                "fetch.wait.max.ms": 100,
            }
        )
        self._workers = ThreadPoolExecutor(max_workers=16, thread_name_prefix="invoke")

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

    def deliver_partition(self, records: list[KafkaRecord]) -> int:
        """Deliver one partition's records in order, in invocations of at most the batch size, retrying
        failures with backoff until accepted or stopping. Returns how many leading records were accepted."""
        size = self.settings.trigger_batch_size
        accepted = 0
        delay = self.settings.trigger_retry_initial_s
        while accepted < len(records):
            chunk = records[accepted : accepted + size]
            taken = accepted_prefix(chunk, self.invoke(chunk))
            accepted += taken
            if taken == len(chunk):
                delay = self.settings.trigger_retry_initial_s
                continue
            if self.stopping.is_set():
                break
            log.info("retrying %s from offset %d in %.1fs", chunk[taken].topic, chunk[taken].offset, delay)
            if self.stopping.wait(delay):
                break
            delay = min(delay * 2, self.settings.trigger_retry_max_s)
        return accepted

    def deliver(self, records: list[KafkaRecord]) -> None:
        """Deliver a polled batch, partitions in parallel, then commit what was accepted."""
        by_partition: dict[tuple[str, int], list[KafkaRecord]] = defaultdict(list)
        for record in records:
            by_partition[(record.topic, record.partition)].append(record)
        futures = {tp: self._workers.submit(self.deliver_partition, recs) for tp, recs in by_partition.items()}
        _, pending = wait(futures.values(), timeout=SLOW_DELIVERY_S)
        if pending:
            # Retries are taking their time: poll (paused, so no record is taken) to stay in the group.
            # Only then: pausing drops the records the client has already fetched.
            assignment = self._consumer.assignment()
            self._consumer.pause(assignment)
            while not all(f.done() for f in pending):
                self._consumer.poll(0.5)
            self._consumer.resume(assignment)
        offsets = []
        for (topic, partition), future in futures.items():
            taken = future.result()
            if taken:
                offsets.append(TopicPartition(topic, partition, by_partition[(topic, partition)][taken - 1].offset + 1))
        if offsets:
            try:
                self._consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:  # e.g. a rebalance: the records come again, storing them is harmless
                log.warning("commit failed, records will be redelivered: %s", exc)

    def run(self) -> None:
        s = self.settings
        self._consumer.subscribe([s.kafka_topic])
        log.info("consuming %s as %s -> %s (batch %d, window %.2fs)", s.kafka_topic, s.kafka_group_id,
                 s.ingest_url, s.trigger_batch_size, s.trigger_batch_window_s)  # fmt: skip
        try:
            while not self.stopping.is_set():
                partitions = max(1, len(self._consumer.assignment()))
                messages = self._consumer.consume(
                    num_messages=s.trigger_batch_size * partitions,
                    timeout=max(s.trigger_batch_window_s, 0.05),
                )
                records = []
                for message in messages:
                    if message.error():
                        log.warning("consumer error: %s", message.error())
                        continue
                    records.append(record_of(message))
                if records:
                    self.deliver(records)
        finally:
            self._consumer.close()
            self._workers.shutdown()
            log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    configure_logging()
    trigger = Trigger(get_settings())

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the batch in flight", signum)
        trigger.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    trigger.run()


if __name__ == "__main__":
    main(sys.argv[1:])
