"""End-to-end ingest benchmark: Kafka → trigger → ingest_order (over HTTP, as the native runner runs it) →
committed in PostgreSQL, with realistic orders of 1–5 items.

- Throughput: a backlog of orders is produced first; the trigger then drains it. Orders per second from the
  first order committed to the last (the consumer joining its group is left out).
- Latency: orders produced at a steady rate below capacity; for each, the time from its produce call to its
  row being committed (the row's ``ingested_at``, the same clock).

Writes ``ingest_orders_per_s``, ``ingest_latency_p50_ms`` and ``ingest_latency_p99_ms``.
Usage: ``python -m bench.bench_ingest [ORDERS]`` (default 60,000); ``make bench`` runs it with the others.
"""

from __future__ import annotations

import json
import sys
import time
import uuid

import pg8000.native
from confluent_kafka import Producer

from bench.results import percentile, record
from devstack import services
from devstack.stack import running
from orders_core.adapters.kafka_client import client_config
from orders_core.config import Settings
from orders_core.generator.builder import iter_orders
from orders_local.provision import ensure_topic

BATCH_SIZE = "500"  # records per invocation (the platform allows up to 10,000; its default is 100)


def count_stored(db: pg8000.native.Connection, topic_tag: str) -> int:
    return int(db.run("SELECT count(*) FROM orders WHERE entry = :tag", tag=topic_tag)[0][0])


def make_topic(env: dict[str, str]) -> str:
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    ensure_topic(Settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], kafka_topic=topic))
    return topic


def produce(
    producer: Producer, topic: str, count: int, seed: int, tag: str, rate: float | None = None
) -> dict[str, float]:
    """Produce ``count`` orders tagged in ``entry``; returns produce time by uid (epoch seconds)."""
    sent_at: dict[str, float] = {}
    started = time.monotonic()
    for index, (uid, value) in enumerate(iter_orders(count, seed=seed)):
        order = json.loads(value)
        order["entry"] = tag  # to count this run's orders without a list of uids
        if rate:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent_at[uid] = time.time()
        while True:
            try:
                producer.produce(topic, key=uid.encode(), value=json.dumps(order).encode())
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    return sent_at


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 60_000
    with running("postgres", "memcached", "aws", "kafka") as (env, work, _):
        ingest = services.function("ingest_order", env, work).start()
        ingest_url = f"http://127.0.0.1:{ingest.port}/"
        producer = Producer({**client_config(Settings()), "linger.ms": 5,
                             "enable.idempotence": True, "compression.type": "lz4"})  # fmt: skip
        db = services.connect_db(int(env["PGPORT"]))

        # Throughput: drain a backlog.
        topic, tag = make_topic(env), uuid.uuid4().hex[:12]
        produce(producer, topic, count, seed=7, tag=tag)
        trigger_env = {**env, "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": f"g-{topic}", "INGEST_URL": ingest_url,
                       "TRIGGER_BATCH_SIZE": BATCH_SIZE}  # fmt: skip
        trigger = services.trigger(trigger_env, work).start()
        # Sustained rate: from the first stored order to the last, leaving out the consumer joining its group.
        services.wait_until(lambda: count_stored(db, tag) > 0, 120, "ingest started", 0.005)
        started, first = time.monotonic(), count_stored(db, tag)
        services.wait_until(lambda: count_stored(db, tag) == count, 600, "backlog drained", 0.02)
        elapsed = time.monotonic() - started
        trigger.stop()
        rate = (count - first) / elapsed
        print(
            f"ingest throughput: {count - first:,} orders in {elapsed:.2f} s = {rate:,.0f} orders/s sustained "
            f"(batch {BATCH_SIZE}, 3 partitions)"
        )

        # Latency: a steady stream at a rate the pipeline keeps up with.
        topic, tag = make_topic(env), uuid.uuid4().hex[:12]
        trigger = services.trigger({**trigger_env, "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": f"g-{topic}"}, work).start()
        time.sleep(3)  # the consumer joins its group
        steady_rate, steady_count = 1_000, 10_000
        sent_at = produce(producer, topic, steady_count, seed=8, tag=tag, rate=steady_rate)
        services.wait_until(lambda: count_stored(db, tag) == steady_count, 120, "stream stored", 0.05)
        trigger.stop()
        rows = db.run(
            "SELECT order_uid, extract(epoch FROM ingested_at)::float8 FROM orders WHERE entry = :tag", tag=tag
        )
        latencies = [(visible - sent_at[uid]) * 1000 for uid, visible in rows]
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        print(f"ingest latency at {steady_rate:,}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms (produce → committed)")
        ingest.stop()
        db.close()
    record({"ingest_orders_per_s": rate, "ingest_latency_p50_ms": p50, "ingest_latency_p99_ms": p99})


if __name__ == "__main__":
    main()
