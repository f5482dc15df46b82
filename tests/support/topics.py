"""Reading a test's Kafka topic whole, from its first record to the end the broker has now."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition


def read_all(bootstrap: str, topic: str) -> list[Message]:
    """Every record of partition 0 of ``topic``, in offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    records: list[Message] = []
    deadline = time.monotonic() + 30
    try:
        while True:
            # Short waits: consume() waits its whole timeout for a batch that is not full.
            batch = consumer.consume(1000, 0.2)
            assert batch or time.monotonic() < deadline, "the topic did not answer"
            for message in batch:
                if message.error():
                    return records
                records.append(message)
    finally:
        consumer.close()


def topic_values(bootstrap: str, topic: str) -> list[bytes]:
    """The values of every record of partition 0 of ``topic``."""
    return [message.value() for message in read_all(bootstrap, topic)]
