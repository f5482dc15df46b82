"""The Kafka topic the orders travel on: created when missing, with the partitions and replication factor of the
settings; an existing one is left as it is and compared with them. ``orders-setup`` runs it locally, the stack's
provisioning (functions/provision) in the cloud, so it ships in orders_core.

An existing topic is never altered: Kafka cannot remove partitions, adding some moves keys between partitions,
and a new replication factor is a reassignment — the operator's decisions, perhaps on a topic another team owns.
A difference is logged as a warning, and the step succeeds: the stack works with any partition count. What the
cluster refuses to create as asked (a replication factor above its brokers, a policy, an ACL) raises
:class:`TopicRefused`, which retrying cannot change.
"""

from __future__ import annotations

import logging
import socket
import time
from concurrent.futures import Future
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from orders_core.adapters.kafka_client import KafkaSettings, client_config

log = logging.getLogger(__name__)

# What the cluster answers to a topic it will not create as asked: asking again changes nothing.
_REFUSED = frozenset(
    {
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.POLICY_VIOLATION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


@dataclass(frozen=True, slots=True)
class KafkaTopicSettings(KafkaSettings):
    """The orders' topic as the settings shape it, and the cluster it is on."""

    kafka_topic: str
    kafka_topic_partitions: int
    kafka_topic_replication_factor: int


class TopicRefused(Exception):
    """The cluster will not create the topic as the settings ask: fix the settings (or the cluster's ACLs)."""


def ensure_topic(settings: KafkaTopicSettings) -> str:
    """Create KAFKA_TOPIC with KAFKA_TOPIC_PARTITIONS partitions and KAFKA_TOPIC_REPLICATION_FACTOR replicas, or
    find it there (warning of each difference); what was done. A refused login or certificate raises
    :class:`~orders_core.adapters.kafka_client.KafkaAuthError` at once."""
    # A plain connect first: while the broker starts, the Kafka client would log every refused attempt.
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    socket.create_connection((host, int(port)), timeout=2).close()
    admin = AdminClient({**client_config(settings), "socket.timeout.ms": 5000})
    name, partitions = settings.kafka_topic, settings.kafka_topic_partitions
    replicas = settings.kafka_topic_replication_factor
    future = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replicas)],
        operation_timeout=10,
        request_timeout=10,
    )[name]
    try:
        admin_result(admin, future, 15)
    except KafkaException as exc:
        error = exc.args[0]
        if error.code() in _REFUSED:
            raise TopicRefused(f"topic {name}: {error.str()}") from exc
        if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        found = admin.list_topics(name, timeout=10).topics[name]
        has_partitions = len(found.partitions)
        has_replicas = min(len(partition.replicas) for partition in found.partitions.values())
        differences = topic_differences(partitions, replicas, has_partitions, has_replicas)
        for difference in differences:
            log.warning("topic %s: %s", name, difference, extra={"topic": name})
        # What was done, as the deployment's custom resource reports it too: the differences with it.
        return "; ".join([f"topic {name} exists", *differences])
    return f"topic {name} created with {partitions} partitions, replication factor {replicas}"


def topic_differences(partitions: int, replicas: int, has_partitions: int, has_replicas: int) -> list[str]:
    """How an existing topic differs from the settings, each with what would change it."""
    differences = []
    if has_partitions < partitions:
        differences.append(
            f"{has_partitions} partitions, fewer than KAFKA_TOPIC_PARTITIONS={partitions}: at most {has_partitions} "
            f"batches are ingested at once (kafka-topics.sh --alter --partitions {partitions} adds them)"
        )
    elif has_partitions > partitions:
        differences.append(
            f"{has_partitions} partitions, more than KAFKA_TOPIC_PARTITIONS={partitions} (Kafka cannot remove "
            "partitions; the setting only shapes a new topic)"
        )
    if has_replicas != replicas:
        differences.append(
            f"replication factor {has_replicas}, not KAFKA_TOPIC_REPLICATION_FACTOR={replicas} "
            "(kafka-reassign-partitions.sh changes it)"
        )
    return differences


def admin_result(admin: AdminClient, future: Future[None], timeout_s: float) -> None:
    """Wait for an admin request, serving the client's callbacks meanwhile: a refused login or certificate
    raises at once (the error callback) instead of when the request times out."""
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        admin.poll(0.1)
    future.result(timeout=max(deadline - time.monotonic(), 0.0))
