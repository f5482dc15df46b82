"""The Kafka topic the orders travel on: created when missing, left as it is when it exists. ``orders-setup``
runs it locally, the stack's provisioning (functions/provision) in the cloud, so it ships in orders_core."""

from __future__ import annotations

import socket

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from orders_core.config import Settings


def ensure_topic(settings: Settings) -> str:
    """Create KAFKA_TOPIC with KAFKA_TOPIC_PARTITIONS partitions and KAFKA_TOPIC_REPLICATION_FACTOR replicas,
    or find it there; what was done."""
    # A plain connect first: while the broker starts, the Kafka client would log every refused attempt.
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    socket.create_connection((host, int(port)), timeout=2).close()
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers, "socket.timeout.ms": 5000})
    topic = NewTopic(
        settings.kafka_topic,
        num_partitions=settings.kafka_topic_partitions,
        replication_factor=settings.kafka_topic_replication_factor,
    )
    future = admin.create_topics([topic], operation_timeout=10, request_timeout=10)[settings.kafka_topic]
    try:
        future.result(timeout=15)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        return f"topic {settings.kafka_topic} exists"
    return f"topic {settings.kafka_topic} created with {settings.kafka_topic_partitions} partitions"
