"""The dead letters on a Kafka topic (``DEAD_LETTER_SINK=kafka``, topic ``DLQ_TOPIC``): the same letters as on
SQS (``adapters.letters``), one record each, keyed by the refused record's place so copies of one letter share a
partition.

Reading (``KafkaMailbox``) is by the consumer group ``orders-dlq-tool``, and deleting a letter is committing it.
Kafka commits a position, not a letter: the group's offset moves over every letter deleted up to the first one
kept, and the letters deleted beyond a kept one are listed in the commit's metadata, so the next reader skips
them too.
"""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from orders_core.adapters.kafka_admin import admin_result
from orders_core.adapters.kafka_client import KafkaSettings, client_config
from orders_core.adapters.letters import encode_letter, minimal_letter
from orders_core.domain.ports import DeadLetter, DeadLetterUnavailable, ReceivedLetter

log = logging.getLogger(__name__)

TOOL_GROUP = "orders-dlq-tool"
DELIVERY_TIMEOUT_S = 10.0  # a letter not acknowledged by then is handed back: its record is redelivered
METADATA_MAX = 3800  # bytes of commit metadata (the broker's offset.metadata.max.bytes is 4096 by default)


@dataclass(frozen=True, slots=True)
class KafkaDeadLetterSettings(KafkaSettings):
    """What the dead letters' Kafka side needs beyond the cluster: their topic, orders-dlq's ledger, where the
    letters go, and the replication of the topics it makes."""

    dlq_topic: str
    dlq_ledger_topic: str
    dead_letter_sink: str
    kafka_topic_replication_factor: int


def ensure_topics(settings: KafkaDeadLetterSettings, topics: Sequence[tuple[str, int, dict[str, str]]]) -> list[str]:
    """Create each ``(name, partitions, config)`` topic that is missing; what was done, one phrase each."""
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    socket.create_connection((host, int(port)), timeout=2).close()  # not the client's log of refused attempts
    admin = AdminClient({**client_config(settings), "socket.timeout.ms": 5000})
    replicas = settings.kafka_topic_replication_factor
    new = [NewTopic(name, num_partitions=n, replication_factor=replicas, config=config) for name, n, config in topics]
    done = []
    for name, future in admin.create_topics(new, operation_timeout=10, request_timeout=10).items():
        try:
            admin_result(admin, future, 15)
            done.append(f"topic {name} created")
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            done.append(f"topic {name} exists")
    return done


def dead_letter_topics(settings: KafkaDeadLetterSettings) -> list[tuple[str, int, dict[str, str]]]:
    """The topics of the dead letters: the letters' own (when they go to Kafka) and orders-dlq's ledger."""
    ledger = (settings.dlq_ledger_topic, 1, {"cleanup.policy": "compact"})
    if settings.dead_letter_sink != "kafka":
        return [ledger]
    # Kept as long as SQS keeps a message (14 days), and as large as a letter may be.
    letters = (settings.dlq_topic, 1, {"retention.ms": str(14 * 24 * 3600 * 1000), "max.message.bytes": "1048576"})
    return [letters, ledger]


def letter_key(letter: DeadLetter) -> bytes:
    return f"{letter.topic}-{letter.partition}@{letter.offset}".encode()


class KafkaDeadLetterSink:
    """Produces dead letters to ``DLQ_TOPIC`` (acks=all, idempotent) and waits for each one's delivery report."""

    def __init__(self, settings: KafkaDeadLetterSettings, producer: Any = None) -> None:
        self._settings = settings
        self._topic = settings.dlq_topic
        self._producer: Any = producer

    def _made(self) -> Any:
        if self._producer is None:
            self._producer = Producer(
                {
                    **client_config(self._settings),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "message.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),
                    "client.id": "orders-dlq-sink",
                }
            )
        return self._producer

    def ping(self) -> None:
        """Raise ``DeadLetterUnavailable`` unless the cluster names the topic (readiness)."""
        try:
            metadata = self._made().list_topics(self._topic, timeout=5)
        except KafkaException as exc:
            raise DeadLetterUnavailable(f"dead-letter topic unreachable: {exc}") from exc
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None:
            raise DeadLetterUnavailable(f"dead-letter topic {self._topic}: {getattr(topic, 'error', 'missing')}")

    def depth(self) -> tuple[int, float | None]:
        """How many letters wait (beyond the offsets orders-dlq's group committed), for ingest_order's /metrics;
        no age (it would take reading the first letter of each partition): None."""
        consumer = Consumer(
            {
                **client_config(self._settings),
                "group.id": TOOL_GROUP,
                "enable.auto.commit": False,
                "client.id": "orders-dlq-depth",
            }
        )
        try:
            topic = consumer.list_topics(self._topic, timeout=5).topics.get(self._topic)
            if topic is None or topic.error is not None:
                raise DeadLetterUnavailable(f"dead-letter topic {self._topic} unreachable")
            waiting = 0
            for tp in _committed(consumer, [TopicPartition(self._topic, p) for p in topic.partitions], 5.0):
                low, high = consumer.get_watermark_offsets(TopicPartition(self._topic, tp.partition), timeout=5)
                start = max(tp.offset, low) if tp.offset >= 0 else low
                waiting += max(0, high - start)
            return waiting, None
        except KafkaException as exc:
            raise DeadLetterUnavailable(f"dead-letter topic unreachable: {exc}") from exc
        finally:
            consumer.close()

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send every letter or raise ``DeadLetterUnavailable`` naming those not acknowledged."""
        if not letters:
            return
        producer = self._made()
        acked: set[int] = set()
        errors: list[str] = []

        def reported(index: int) -> Any:
            def delivered(err: Any, _message: Any) -> None:
                if err is None:
                    acked.add(index)
                else:
                    errors.append(str(err))

            return delivered

        for index, letter in enumerate(letters):
            body = _body(letter)
            while True:
                try:
                    producer.produce(
                        self._topic, value=body.encode(), key=letter_key(letter), on_delivery=reported(index)
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
                except KafkaException as exc:
                    errors.append(str(exc))
                    break
        # Every report arrives within the message timeout; a little more for the reports themselves.
        producer.flush(DELIVERY_TIMEOUT_S + 5)
        unsent = [letter for index, letter in enumerate(letters) if index not in acked]
        if unsent:
            raise DeadLetterUnavailable(
                f"Kafka took {len(acked)} of {len(letters)} dead letters: {'; '.join(errors[:3]) or 'no report'}",
                unsent,
            )


def _body(letter: DeadLetter) -> str:
    try:
        return encode_letter(letter)
    except Exception:  # whatever a letter holds, its record must still be dead-lettered
        log.exception("dead letter for %s@%d could not be encoded", letter.topic, letter.offset)
        return minimal_letter(letter)


# ------------------------------------------------------------------------------------------- reading


def _ranges(offsets: set[int]) -> str:
    """``{3, 4, 5, 9}`` as ``3-5,9``."""
    runs: list[list[int]] = []
    for offset in sorted(offsets):
        if runs and runs[-1][1] == offset - 1:
            runs[-1][1] = offset
        else:
            runs.append([offset, offset])
    return ",".join(f"{first}" if first == last else f"{first}-{last}" for first, last in runs)


def _offsets(text: str | None) -> set[int]:
    found: set[int] = set()
    for part in (text or "").split(","):
        if match := re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip()):
            first, last = int(match[1]), int(match[2] or match[1])
            found.update(range(first, min(last, first + 1_000_000) + 1))
    return found


class _Partition:
    """One partition of the letters' topic as this reader sees it."""

    def __init__(self, committed: int, end: int, deleted: set[int]) -> None:
        self.committed = committed  # the group's offset when the reader started, then as it commits
        self.end = end  # the end when the reader started: it reads no further
        self.deleted = {o for o in deleted if o >= committed}  # beyond the group's offset, deleted already
        self.kept: set[int] = set()  # received by this reader and not deleted
        self.position = committed  # next offset this reader reads

    def commit_point(self) -> tuple[int, set[int]]:
        """The offset to commit (below it, everything is deleted) and the deleted offsets beyond it."""
        point = min([*self.kept, self.position])
        while point in self.deleted:
            point += 1
        return point, {o for o in self.deleted if o > point}


def _committed(consumer: Consumer, partitions: list[TopicPartition], timeout_s: float = 30.0) -> list[TopicPartition]:
    """The group's offsets; a broker just started answers "not coordinator" until its offsets topic is ready."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return list(consumer.committed(partitions, timeout=10))
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class KafkaMailbox:
    """The letters' topic read by the group ``orders-dlq-tool`` (``DeadLetterMailbox``), up to its end when the
    reader started. Letters not deleted stay for the next reader; this one receives each once."""

    def __init__(self, settings: KafkaDeadLetterSettings, group: str = TOOL_GROUP, poll_s: float = 10.0) -> None:
        self._topic, self._poll_s, self._group = settings.dlq_topic, poll_s, group
        self._cluster = settings.kafka_bootstrap_servers
        self._consumer = Consumer(
            {
                **client_config(settings),
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
                "client.id": "orders-dlq-reader",
            }
        )
        try:
            metadata = self._consumer.list_topics(self._topic, timeout=10)
            topic = metadata.topics.get(self._topic)
            if topic is None or topic.error is not None:
                raise KafkaException(topic.error if topic is not None else f"no topic {self._topic}")
            wanted = [TopicPartition(self._topic, p) for p in sorted(topic.partitions)]
            committed = _committed(self._consumer, wanted)
            self._partitions: dict[int, _Partition] = {}
            for tp in committed:
                low, high = self._consumer.get_watermark_offsets(TopicPartition(self._topic, tp.partition), timeout=10)
                start = max(tp.offset, low) if tp.offset >= 0 else low
                self._partitions[tp.partition] = _Partition(start, high, _offsets(getattr(tp, "metadata", None)))
            self._consumer.assign(
                [
                    TopicPartition(self._topic, p, state.committed if state.committed > 0 else OFFSET_BEGINNING)
                    for p, state in self._partitions.items()
                ]
            )
        except BaseException:
            self._consumer.close()
            raise
        self._done = {p for p, state in self._partitions.items() if state.position >= state.end}

    def describe(self) -> str:
        return f"Kafka topic {self._topic} (group {self._group}) on cluster {self._cluster}"

    def size(self) -> int:
        return sum(
            max(0, s.end - s.committed - len([o for o in s.deleted if o < s.end])) for s in self._partitions.values()
        )

    def receive(self, most: int) -> list[ReceivedLetter]:
        letters: list[ReceivedLetter] = []
        deadline = time.monotonic() + self._poll_s
        # Until a letter comes or every partition reached its end (the broker says so at once): an answer of
        # nothing is the end, not a slow broker.
        while len(letters) < most and len(self._done) < len(self._partitions) and time.monotonic() < deadline:
            messages = self._consumer.consume(min(most - len(letters), 500), timeout=0.2)
            if not messages and letters:
                break
            for message in messages:
                partition, offset = message.partition() or 0, message.offset() or 0
                state = self._partitions.get(partition)
                error = message.error()
                if state is None or partition in self._done:
                    continue
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        state.position = max(state.position, offset)
                        if state.position >= state.end:
                            self._done.add(partition)
                        continue
                    raise KafkaException(error)
                if offset >= state.end:
                    self._done.add(partition)
                    continue
                # Offsets skipped over (none in a plain topic) hold no letter: nothing to keep for them.
                state.deleted.update(range(state.position, offset))
                state.position = offset + 1
                if state.position >= state.end:
                    self._done.add(partition)
                if offset in state.deleted:
                    continue  # deleted by an earlier reader, beyond the group's offset
                state.kept.add(offset)
                timestamp = message.timestamp()[1]
                letters.append(
                    ReceivedLetter(
                        f"{self._topic}-{partition}@{offset}",
                        (message.value() or b"").decode("utf-8", "replace"),
                        max(timestamp, 0),
                        f"{partition}:{offset}",
                    )
                )
        return letters

    def delete(self, letters: Sequence[ReceivedLetter]) -> list[ReceivedLetter]:
        """Commit the letters: the group's offset, and the deleted offsets beyond it as the commit's metadata."""
        touched: dict[int, list[ReceivedLetter]] = {}
        for letter in letters:
            partition, offset = _place(letter)
            state = self._partitions[partition]
            state.kept.discard(offset)
            state.deleted.add(offset)
            touched.setdefault(partition, []).append(letter)
        commits = []
        failed: list[ReceivedLetter] = []
        for partition, mine in touched.items():
            state = self._partitions[partition]
            point, beyond = state.commit_point()
            metadata = _ranges(beyond)
            if len(metadata) > METADATA_MAX:  # too scattered to remember: these stay, and are reported
                for letter in mine:
                    state.deleted.discard(_place(letter)[1])
                    state.kept.add(_place(letter)[1])
                failed += mine
                continue
            commits.append(TopicPartition(self._topic, partition, point, metadata))
        if commits:
            try:
                self._consumer.commit(offsets=commits, asynchronous=False)
            except KafkaException as exc:
                log.warning("committing deleted letters failed: %s", exc)
                for letter in letters:  # not deleted: this reader keeps them as received
                    partition, offset = _place(letter)
                    self._partitions[partition].deleted.discard(offset)
                    self._partitions[partition].kept.add(offset)
                return list(letters)
            for tp in commits:
                self._partitions[tp.partition].committed = tp.offset
        return failed

    def release(self, letters: Sequence[ReceivedLetter]) -> list[ReceivedLetter]:
        """Nothing to do: a letter not committed is there for the next reader."""
        return []

    def close(self) -> None:
        self._consumer.close()


def _place(letter: ReceivedLetter) -> tuple[int, int]:
    """The partition and offset of a letter received from the topic (its handle)."""
    partition, _, offset = letter.handle.partition(":")
    return int(partition), int(offset)


def open_topic_producer(settings: KafkaDeadLetterSettings, transactional_id: str) -> Producer:
    """A transactional producer for orders-dlq: records and its ledger entries are written together or not."""
    producer = Producer(
        {
            **client_config(settings),
            "enable.idempotence": True,
            "acks": "all",
            "transactional.id": transactional_id,
            "transaction.timeout.ms": 60_000,
            "client.id": "orders-dlq",
        }
    )
    producer.init_transactions(30)
    return producer
