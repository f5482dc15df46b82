"""``orders-setup``: the one idempotent set-up step — database migrations, the Kafka topic, the dead-letter
queue. The native runner, docker compose, the tests and a cloud deploy (``--only migrate``) all run it."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from orders_core.adapters.kafka_client import KafkaAuthError, client_config
from orders_core.adapters.postgres import OrderStore, apply_migrations
from orders_core.adapters.sqs import ensure_queue
from orders_core.config import Settings, get_settings
from orders_core.http.logs import configure_logging

log = logging.getLogger("orders_local.provision")
STEPS = ("migrate", "topic", "queue")


def migrate(settings: Settings) -> str:
    conn = OrderStore(settings).connect()
    try:
        applied = apply_migrations(conn)
    finally:
        conn.close()
    return f"applied {', '.join(applied)}" if applied else "schema up to date"


class Refused(Exception):
    """A step the service refused for a reason retrying cannot change (credentials, a bad topic setting)."""


def ensure_topic(settings: Settings) -> str:
    """Create the topic with the partitions and replication factor of the settings; an existing topic is left as
    it is (growing partitions moves keys between them; replicas need a reassignment: the operator's call), and a
    difference is logged as a warning."""
    # A plain connect first: while the broker starts, the Kafka client would log every refused attempt.
    host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    socket.create_connection((host, int(port)), timeout=2).close()
    admin = AdminClient({**client_config(settings), "socket.timeout.ms": 5000})
    name, partitions, replicas = (
        settings.kafka_topic,
        settings.kafka_topic_partitions,
        settings.kafka_topic_replication_factor,
    )
    topic = NewTopic(name, num_partitions=partitions, replication_factor=replicas)
    future = admin.create_topics([topic], operation_timeout=10, request_timeout=10)[name]
    try:
        _result(admin, future, 15)
    except KafkaException as exc:
        error = exc.args[0]
        if error.code() in _REFUSED_TOPICS:
            raise Refused(f"topic {name}: {error.str()}") from exc
        if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        found = admin.list_topics(name, timeout=10).topics[name]
        has_partitions = len(found.partitions)
        has_replicas = min(len(p.replicas) for p in found.partitions.values())
        for differs in topic_differences(partitions, replicas, has_partitions, has_replicas):
            log.warning("topic %s: %s", name, differs, extra={"topic": name})
        return f"topic {name} exists with {has_partitions} partitions, replication factor {has_replicas}"
    return f"topic {name} created with {partitions} partitions, replication factor {replicas}"


# What the cluster answers to a topic it will not create as asked: asking again changes nothing.
_REFUSED_TOPICS = frozenset(
    {
        KafkaError.INVALID_REPLICATION_FACTOR,
        KafkaError.INVALID_PARTITIONS,
        KafkaError.POLICY_VIOLATION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


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
            "partitions; the setting only matters for a new topic)"
        )
    if has_replicas != replicas:
        differences.append(
            f"replication factor {has_replicas}, KAFKA_TOPIC_REPLICATION_FACTOR={replicas} asked "
            "(kafka-reassign-partitions.sh changes it)"
        )
    return differences


def _result(admin: AdminClient, future: Future[None], timeout_s: float) -> None:
    """Wait for an admin request, serving the client's callbacks meanwhile: a refused login or certificate
    raises at once (the error callback) instead of when the request times out."""
    deadline = time.monotonic() + timeout_s
    while not future.done() and time.monotonic() < deadline:
        admin.poll(0.1)
    future.result(timeout=max(deadline - time.monotonic(), 0.0))


def ensure_dead_letter_queue(settings: Settings) -> str:
    return f"queue {ensure_queue(settings)}"


def run(steps: tuple[str, ...], wait_s: float, settings: Settings) -> None:
    """Run each step, retrying while its service is still starting, for at most ``wait_s`` seconds."""
    actions: dict[str, Callable[[Settings], str]] = {
        "migrate": migrate,
        "topic": ensure_topic,
        "queue": ensure_dead_letter_queue,
    }
    deadline = time.monotonic() + wait_s
    for step in steps:
        delay = 0.25
        while True:
            try:
                log.info("%s: %s", step, actions[step](settings))
                break
            except (Refused, KafkaAuthError) as exc:
                raise SystemExit(f"orders-setup: {step} failed: {exc}") from exc
            except Exception as exc:
                if time.monotonic() + delay > deadline:
                    raise SystemExit(f"orders-setup: {step} failed: {exc}") from exc
                log.debug("%s: waiting (%s)", step, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="orders-setup", description=__doc__)
    parser.add_argument("--wait", action="store_true", help="wait for the services to come up (see --timeout)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait with --wait")
    parser.add_argument("--only", action="append", choices=STEPS, help="run only these steps (repeatable)")
    args = parser.parse_args(argv)
    configure_logging()
    logging.getLogger("orders_core").setLevel(logging.INFO)
    steps = tuple(args.only) if args.only else STEPS
    run(steps, args.timeout if args.wait else 0.0, get_settings())


if __name__ == "__main__":
    main(sys.argv[1:])
