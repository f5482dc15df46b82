"""``orders-trigger``: the local stand-in for the platform's Kafka event source mapping.

It consumes the orders topic in its own consumer group with manual commits, batches records (up to
``TRIGGER_BATCH_SIZE`` per invocation, waiting at most ``TRIGGER_BATCH_WINDOW_S``, in events of at most
``TRIGGER_MAX_EVENT_BYTES``), POSTs the Lambda Kafka event to the ingest function — one invocation at a
time per partition, partitions in parallel, as the platform does — and commits a partition only past
records the function took: a 200 whose partial batch response names records of the batch, or none. Any
other answer retries the whole batch, with exponential backoff, forever: a record is never skipped. A record
that alone makes an event over the limit, which no invocation could carry, goes to the dead letters
(``too_large``) as the platform sends it to its on-failure destination.

Only a partition whose deliveries are retrying is paused; the others keep flowing. A rebalance drops what
was consumed before it, and a partition no longer assigned is never committed. SIGTERM finishes the
invocations in flight, commits, leaves the group and exits; a delivery thread that fails unexpectedly, or a
fatal consumer error (this member fenced by another with its ``TRIGGER_INSTANCE_ID``), stops the trigger with
a non-zero status, saying why on ``/health`` and ``/status`` until it exits, so its records are redelivered.
A record is never refused for what it holds: one whose headers the client cannot read goes without them.

Every invocation carries a fresh ``Function-Execution-Id`` header (its request id) and is logged as one line
with its records' coordinates, its answer, what the function took and how long it took. The trigger's own
HTTP server (``trigger_status``) reports its partitions, commits, consumer lag and retries.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence

import urllib3
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from orders_core import bootstrap, heap
from orders_core.adapters.kafka_client import KafkaSettings, client_config, refusal
from orders_core.adapters.kafka_event import encode_events, failed_offsets
from orders_core.adapters.kafka_records import record_of
from orders_core.config import Settings, get_settings, narrow
from orders_core.domain.ingest import dead_letter
from orders_core.domain.ports import DeadLetterSink, KafkaRecord
from orders_core.http.logs import configure_logging
from orders_local.trigger_status import TriggerStatus, serve_status

log = logging.getLogger("orders_local.trigger")
QUEUED_BATCHES = 2  # per partition, waiting behind the one in flight
PAUSED_POLL_S = 0.02  # how soon a paused partition is looked at again
# The longest one consume() waits. The batch window is kept per partition here, not as consume()'s timeout:
# consume() waits until it has a whole batch from all partitions together, and workers that had finished
# theirs sat idle behind it (a backlog drained about a sixth slower, measured).
CONSUME_POLL_S = 0.05
PENDING_BATCHES = 2  # per partition, consumed and waiting behind the queued batches, before it is paused
PartitionKey = tuple[str, int]


def accepted_prefix(records: Sequence[KafkaRecord], failed: set[tuple[str, int]]) -> int:
    """How many records of one partition (in offset order) may be committed: those before the first failure."""
    if not failed:
        return len(records)
    for index, record in enumerate(records):
        if (record.partition_name, record.offset) in failed:
            return index
    return len(records)


def answer_excerpt(body: bytes, limit: int = 300) -> str:
    """The start of an answer's body for the log, on one line: a newline in it (or any character a log
    viewer could break a line at) is escaped, so the answer cannot forge a log line of its own."""
    return body[:limit].decode(errors="replace").encode("unicode_escape").decode("ascii")


class ConsumerFailed(Exception):
    """The consumer hit an error it cannot recover from: the trigger must exit and be started again."""


class BatchQueue:
    """A partition's batches waiting behind the one in flight, at most ``batches`` of at most ``size`` records.

    Records offered while a batch waits join it until it is full, as the platform fills a batch until its size
    or window is reached: a backlog then goes out in whole batches, not in the slices ``consume()`` happened
    to return for each partition (a third of a batch each, with three partitions), each paying an invocation.
    """

    def __init__(self, size: int, batches: int = QUEUED_BATCHES) -> None:
        self._size, self._batches = size, batches
        self._waiting: collections.deque[list[KafkaRecord]] = collections.deque()
        self._closed = False
        self._changed = threading.Condition()

    def offer(self, records: list[KafkaRecord]) -> int:
        """Queue as many of ``records``, in order, as there is room for; returns how many."""
        taken = 0
        with self._changed:
            if self._closed:
                return 0
            if self._waiting and len(last := self._waiting[-1]) < self._size:
                taken = self._size - len(last)
                last.extend(records[:taken])
            while taken < len(records) and len(self._waiting) < self._batches:
                self._waiting.append(records[taken : taken + self._size])
                taken += self._size
            self._changed.notify()
        return min(taken, len(records))

    def take(self) -> list[KafkaRecord] | None:
        """The next batch, once there is one; None once closed."""
        with self._changed:
            while not self._waiting and not self._closed:
                self._changed.wait()
            return None if self._closed else self._waiting.popleft()

    def close(self) -> None:
        """Drop the batches not started; ``take`` answers None from now on."""
        with self._changed:
            self._waiting.clear()
            self._closed = True
            self._changed.notify_all()


class PartitionWorker:
    """Delivers one partition's batches in order, one invocation at a time, and marks what the function
    took for the consumer's thread to commit (librdkafka's synchronous commit hangs on another thread).

    Batches queue up (a few at most) while one is in flight, so consuming overlaps delivering.
    """

    def __init__(self, trigger: Trigger, key: PartitionKey, batch_size: int) -> None:
        self.trigger = trigger
        self.key = key
        self.batches = BatchQueue(batch_size)
        self.cancelled = threading.Event()  # no more retries: the trigger stops or loses the partition
        self.thread = threading.Thread(target=self._run, name=f"deliver-{key[0]}-{key[1]}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (batch := self.batches.take()) is not None:
                if self.trigger.deliver_batch(batch, self) < len(batch):
                    break  # cancelled: the rest (and what is queued) is redelivered
        except BaseException as exc:  # never die silently: stop the trigger, Kafka redelivers what is left
            log.critical("delivery thread of %s-%d failed; stopping", *self.key, exc_info=True)
            self.trigger.fail(exc)

    def stop(self) -> None:
        """Drop the batches not yet started, let the invocation in flight finish, and wait for it."""
        self.cancelled.set()
        self.batches.close()
        self.thread.join()


class Trigger:
    def __init__(
        self, settings: Settings, dead_letters: Callable[[], DeadLetterSink] = bootstrap.dead_letter_queue
    ) -> None:
        self.settings = settings
        self.dead_letters = dead_letters  # made on first use: most runs never need it
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self.status = TriggerStatus(settings.kafka_topic)
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=16,
            retries=False,
            timeout=urllib3.Timeout(connect=2.0, read=settings.trigger_request_timeout_s),
        )
        self._consumer = Consumer(
            {
                **client_config(narrow(settings, KafkaSettings)),
                "group.id": settings.kafka_group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "max.poll.interval.ms": 300_000,
                "fetch.wait.max.ms": 100,
                # librdkafka fetches ahead up to 100,000 records a partition by default, and pausing a partition
                # throws away what it fetched ahead: a backlog was fetched and decompressed about twice over
                # (80,000 records from the broker for a drain of 40,000). A batch ahead keeps every partition
                # fed; once that is queued the next fetch waits 10 ms, not librdkafka's default second, which
                # starved the partitions at this depth.
                "queued.min.messages": settings.trigger_batch_size,
                "fetch.queue.backoff.ms": 10,
                # Both callbacks run on the consumer's thread, inside consume().
                "statistics.interval.ms": int(settings.trigger_statistics_interval_s * 1000),
                "stats_cb": self.status.statistics,
                "on_commit": self._on_commit,
                "error_cb": self._consumer_error,
                # Static membership: a trigger restarted after a crash rejoins as itself and gets its partitions
                # back at once, instead of after the dead member's session timeout (45 s).
                **({"group.instance.id": settings.trigger_instance_id} if settings.trigger_instance_id else {}),
            }
        )
        # Owned by the consumer's (main) thread; workers only read them, under the lock.
        self.generation = 0  # bumped by every rebalance: what was consumed before it is dropped
        self.assigned: set[PartitionKey] = set()
        self.workers: dict[PartitionKey, PartitionWorker] = {}
        self.pending: dict[PartitionKey, list[KafkaRecord]] = {}  # consumed, waiting for room in a worker
        self.pending_since: dict[PartitionKey, float] = {}  # when the oldest pending record was consumed
        self.position: dict[PartitionKey, int] = {}  # next offset to consume, once one was in this assignment
        self.paused: set[PartitionKey] = set()
        self._to_commit: dict[PartitionKey, int] = {}
        self._lock = threading.Lock()

    # -- delivering (worker threads) --------------------------------------------------------------

    def invoke(self, records: Sequence[KafkaRecord], body: bytes) -> int:
        """POST one event; returns how many leading records the function took (stored or dead-lettered).
        Logs one line per invocation: its request id, the records' coordinates, the answer, the time."""
        request_id, started = str(uuid.uuid4()), time.monotonic()
        took, answer = self._call(records, body, request_id)
        outcome = "accepted" if took == len(records) else "retried"
        self.status.batches.labels(outcome).inc()
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        span = f"{records[0].label}..{records[-1].offset}"
        log.log(
            logging.INFO if outcome == "accepted" else logging.WARNING,
            "invoked %s with %s (%d records): %s; took %d in %.1f ms",
            request_id,
            span,
            len(records),
            answer,
            took,
            duration_ms,
            extra={
                "function": "trigger",
                "request_id": request_id,
                "partition": records[0].partition_name,
                "first_record": records[0].label,
                "last_record": records[-1].label,
                "records": len(records),
                "taken": took,
                "answer": answer,
                "outcome": outcome,
                "duration_ms": duration_ms,
                "event_bytes": len(body),
            },
        )
        return took

    def _call(self, records: Sequence[KafkaRecord], body: bytes, request_id: str) -> tuple[int, str]:
        """How many leading records the function took, and its answer in a few words."""
        headers = {"Content-Type": "application/json", "Function-Execution-Id": request_id}
        try:
            response = self._http.request("POST", self.settings.ingest_url, body=body, headers=headers)
        except urllib3.exceptions.HTTPError as exc:  # unreachable, or timed out (perhaps after storing)
            return 0, f"unreachable ({exc})"
        if response.status != 200:
            return 0, f"{response.status} {answer_excerpt(response.data)}"
        try:
            failed = failed_offsets(json.loads(response.data), records)
        except (ValueError, RecursionError) as exc:  # not JSON, or not a response for this batch
            return 0, f"200 but {exc}"
        return accepted_prefix(records, failed), f"200, {len(failed)} failed"

    def deliver_batch(self, batch: list[KafkaRecord], worker: PartitionWorker) -> int:
        """Invoke the function with one partition's batch, in events within the size limit, retrying what
        it did not take with backoff until it took everything or the worker is cancelled. What it took is
        committable at once. Returns how many leading records it took."""
        s, cancelled = self.settings, worker.cancelled
        taken, delay = 0, s.trigger_retry_initial_s
        while taken < len(batch) and not cancelled.is_set():
            complete = False
            try:
                records, body = next(encode_events(batch[taken:], s.kafka_bootstrap_servers, s.trigger_max_event_bytes))
                if len(body) > s.trigger_max_event_bytes:
                    took = self.dead_letter_oversized(records[0], len(body))
                else:
                    took = self.invoke(records, body)
                if took:
                    self.accepted(worker, records[took - 1])
                taken += took
                complete = took == len(records)
            except Exception:  # whatever went wrong, the records are retried, never skipped
                log.exception("delivering %s failed unexpectedly", batch[taken].label)
            self.status.set_retrying(worker.key, not complete)
            if complete:
                delay = s.trigger_retry_initial_s
                continue
            log.info("retrying %s in %.1fs", batch[taken].label, delay)
            if cancelled.wait(delay):
                break
            delay = min(delay * 2, s.trigger_retry_max_s)
        return taken

    def dead_letter_oversized(self, record: KafkaRecord, event_bytes: int) -> int:
        """A record that alone makes an event over the payload limit can never be invoked with: the function would
        refuse it on every try and hold up its partition forever. The platform sends such a record to its on-failure
        destination; so does this stand-in, to the dead letters (``too_large``), then goes on. Raises when they
        cannot take it, so it is retried like any delivery."""
        limit = self.settings.trigger_max_event_bytes
        message = f"the record alone makes a {event_bytes}-byte event, over the {limit}-byte invocation payload limit"
        self.dead_letters().send([dead_letter(record, "too_large", message)])
        self.status.too_large.inc()
        log.warning(
            "%s: %s; dead-lettered", record.label, message, extra={"record": record.label, "reason": "too_large"}
        )
        return 1

    def accepted(self, worker: PartitionWorker, last_taken: KafkaRecord) -> None:
        """Note a partition's offset as committable, if the worker still owns it (the consumer commits)."""
        with self._lock:
            if worker.key in self.assigned and self.workers.get(worker.key) is worker:
                self._to_commit[worker.key] = last_taken.offset + 1

    def fail(self, exc: BaseException) -> None:
        """A delivery thread died, or the consumer cannot go on: stop, say why in the status, exit non-zero."""
        self.failure = self.failure or exc
        self.status.fail(f"{exc.__class__.__name__}: {exc}")
        self.stopping.set()

    # -- consuming (the main thread) --------------------------------------------------------------

    def _consumer_error(self, error: KafkaError) -> None:
        """An error of the consumer, from ``consume()`` or ``error_cb``. librdkafka retries the others itself;
        a fatal one (e.g. this member fenced by another with the same ``group.instance.id``) leaves a consumer
        that will never consume again, while answering as if well: stop instead, and exit non-zero, so the
        supervisor sees it. Its partitions belong to someone else by now: nothing more is committed."""
        # A refused login or certificate, which librdkafka would retry forever, cannot recover either.
        refused = refusal(error)
        # librdkafka hands the consumer a fatal error as code _FATAL, whose fatal() says False.
        if not (error.fatal() or error.code() == KafkaError._FATAL or refused):
            log.warning("consumer error: %s", error)
            return
        if self.stopping.is_set() and self.failure is not None:
            return  # said once
        log.critical("fatal consumer error, stopping: %s", refused or error.str())
        with self._lock:  # not a rebalance (no new generation): what is consumed after this is dropped anyway
            self.assigned.clear()
        self.pending.clear()
        self.fail(ConsumerFailed(refused or error.str()))

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to a commit: what the broker confirmed is the partition's last commit."""
        if error is not None:
            log.warning("commit failed, records will be redelivered: %s", error)
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self.status.committed((tp.topic, tp.partition), tp.offset)

    def commit(self, wait: bool = False) -> None:
        with self._lock:
            offsets = [
                TopicPartition(t, p, offset) for (t, p), offset in self._to_commit.items() if (t, p) in self.assigned
            ]
            self._to_commit.clear()
        if not offsets:
            return
        try:
            if wait:  # its answer comes here: no poll may follow to run on_commit
                self._on_commit(None, self._consumer.commit(offsets=offsets, asynchronous=False) or [])
            else:
                self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. a rebalance: the records come again, storing them is harmless
            log.warning("commit failed, records will be redelivered: %s", exc)

    def _take(self, messages: list[Message]) -> None:
        consumed: dict[PartitionKey, list[tuple[int, float]]] = {}
        now = time.time()
        for message in messages:
            if (error := message.error()) is not None:
                self._consumer_error(error)
                continue
            record, unreadable = record_of(message)
            if unreadable:  # delivered all the same: a record that stops its partition stops the stack
                self.status.unreadable.inc()
                log.warning(
                    "%s: %s", record.label, unreadable, extra={"record": record.label, "unreadable": unreadable}
                )
            key = (record.topic, record.partition)
            if key in self.assigned:
                if key not in self.pending:
                    self.pending_since[key] = time.monotonic()
                self.pending.setdefault(key, []).append(record)
                self.position[key] = record.offset + 1
                # The record's own time (Kafka's CreateTime or LogAppendTime), else when it was consumed.
                moment = record.timestamp / 1000 if record.timestamp > 0 else now
                consumed.setdefault(key, []).append((record.offset, moment))
        for key, records in consumed.items():
            self.status.consumed(key, records)

    def _hand_over(self) -> None:
        """Queue pending records to their partition's worker once they fill a batch or the oldest has waited
        the batch window, as the platform invokes. A partition with ``PENDING_BATCHES`` batches waiting here
        too (its deliveries are retrying, or a backlog outruns them) is paused until less than one is left;
        the other partitions keep flowing."""
        size, window, now = self.settings.trigger_batch_size, self.settings.trigger_batch_window_s, time.monotonic()
        for key in list(self.pending):
            records = self.pending[key]
            if len(records) >= size or now - self.pending_since.get(key, now) >= window:
                worker = self.workers.get(key) or self.workers.setdefault(key, PartitionWorker(self, key, size))
                taken = worker.batches.offer(records)
                if taken:
                    del records[:taken]
                    self.pending_since[key] = now  # what is left came after what went
            if len(records) >= PENDING_BATCHES * size and key not in self.paused:
                # Pausing drops what the client fetched ahead of what it returned; after resume it fetches
                # again from there, and what it returned waits here: nothing is skipped.
                self._consumer.pause([TopicPartition(*key)])
                self.paused.add(key)
            elif len(records) < size and key in self.paused:
                # Resumed while a batch's worth may still wait here: fetching again takes a while.
                self._consumer.resume([TopicPartition(*key)])
                self.paused.discard(key)
            if not records:
                del self.pending[key]

    def _until_window_closes(self) -> float:
        """Seconds until the first pending partition's window closes, at most ``CONSUME_POLL_S``."""
        now, window = time.monotonic(), self.settings.trigger_batch_window_s
        closes = [self.pending_since.get(key, now) + window - now for key in self.pending]
        return min([CONSUME_POLL_S, *closes])

    def _rewind(self, dropped: int) -> None:
        """A rebalance happened inside ``consume()``, so what it returned may predate it: drop it all, and
        fetch each assigned partition again from where this trigger left it (its next offset, or the
        committed one for a partition newly assigned)."""
        fresh = [TopicPartition(*key) for key in self.assigned if key not in self.position]
        committed = self._consumer.committed(fresh, timeout=30) if fresh else []
        offsets = [TopicPartition(t, p, offset) for (t, p), offset in self.position.items() if (t, p) in self.assigned]
        offsets += [TopicPartition(tp.topic, tp.partition, max(tp.offset, OFFSET_BEGINNING)) for tp in committed]
        log.info("rebalanced: dropped %d records consumed across it; rewinding %d partitions", dropped, len(offsets))
        for tp in offsets:
            self._consumer.seek(tp)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self.generation += 1
            self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        self.status.assign((tp.topic, tp.partition) for tp in partitions)
        log.info("assigned %s", sorted(f"{tp.topic}-{tp.partition}" for tp in partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        self._drop(keys)
        self.commit(wait=True)  # what the workers finished, while the partitions are still ours
        with self._lock:
            self.generation += 1
            self.assigned -= keys
        self.status.unassign(keys)
        log.info("revoked %s", sorted(f"{t}-{p}" for t, p in keys))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        with self._lock:  # first: another consumer owns them now, nothing of theirs may be committed
            self.generation += 1
            self.assigned -= keys
        self.status.unassign(keys)
        self._drop(keys)
        log.warning("lost %s", sorted(f"{t}-{p}" for t, p in keys))

    def _drop(self, keys: set[PartitionKey]) -> None:
        """Stop the partitions' workers (each finishes its invocation in flight) and forget what is pending."""
        workers = [self.workers[key] for key in keys if key in self.workers]
        for worker in workers:
            worker.cancelled.set()
        for worker in workers:
            worker.stop()
        with self._lock:
            for key in keys:
                self.workers.pop(key, None)
        for key in keys:
            self.pending.pop(key, None)
            self.position.pop(key, None)
            if key in self.paused:  # or it could stay paused when assigned again
                with contextlib.suppress(KafkaException):
                    self._consumer.resume([TopicPartition(*key)])
            self.paused.discard(key)

    def run(self) -> None:
        s = self.settings
        self._consumer.subscribe(
            [s.kafka_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "consuming %s as %s -> %s (batch %d, window %.2fs)",
            s.kafka_topic,
            s.kafka_group_id,
            s.ingest_url,
            s.trigger_batch_size,
            s.trigger_batch_window_s,
        )
        try:
            while not self.stopping.is_set():
                self._hand_over()
                generation = self.generation
                # While a partition is paused (its worker's queue full), look again soon: the queue frees as
                # soon as an invocation returns, and a longer wait would idle the worker behind it.
                wait = PAUSED_POLL_S if self.paused else self._until_window_closes()
                messages = self._consumer.consume(num_messages=s.trigger_batch_size, timeout=max(wait, 0.005))
                if self.generation != generation:
                    self._rewind(len(messages))
                else:
                    self._take(messages)
                    self._hand_over()
                self.commit()
        except Exception as exc:  # unforeseen: say why on /status while the in-flight invocations finish
            log.critical("consuming failed; stopping", exc_info=True)
            self.fail(exc)
        finally:
            self._drop(set(self.workers))
            self.commit(wait=True)
            self._consumer.close()  # leaves the group: a restarted trigger gets the partitions at once
            log.info("stopped")

    def stop(self) -> None:
        """Finish the invocations in flight, commit and exit (a signal handler: the main thread)."""
        self.stopping.set()
        for worker in list(self.workers.values()):
            worker.cancelled.set()


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    heap.settle()  # it holds up to a few batches of records per partition: the same churn as ingest_order's
    trigger = Trigger(settings)
    # Bound before consuming: a port taken by another process stops the trigger at once, saying so.
    server = None
    if settings.trigger_status_port:
        server = serve_status(trigger.status, settings.trigger_status_host, settings.trigger_status_port)

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing the invocations in flight", signum)
        trigger.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        trigger.run()
    finally:
        if server is not None:
            server.shutdown()
    if trigger.failure is not None:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
