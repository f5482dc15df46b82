"""End-to-end ingest benchmark: Kafka → trigger → ingest_order (over HTTP, as `make up` runs it) → committed in
PostgreSQL, with realistic orders of 1–5 items, beside the fastest bare load of the same kind of orders.

Each round (three by default, ``BENCH_ROUNDS``):

- **End to end**: a backlog of ``ORDERS`` orders is produced to a fresh topic first; the trigger then drains it
  with the batch size and window that `make up` and template.yaml use (the settings' defaults). Orders per
  second from the first commit that stored orders to the last, by the server's commit timestamps (the
  consumer joining its group is left out, and the harness asks the trigger whether it is done).
- **Yardstick**: as many other orders of the same generator loaded into the same four tables by PostgreSQL's
  ``COPY``, one statement per table, in one transaction, their rows made beforehand: orders per second of the
  ``COPY`` statements and the commit, right before the drain and right after it: the faster of the two.

``ingest_vs_postgres`` is the first over the second, per round. Then:

- **Latency**: orders produced at 1,000/s; for each, the time from its produce call to the commit of the
  transaction that stored it (``pg_xact_commit_timestamp``: the server runs with ``track_commit_timestamp``).
- **Scale-out**: one backlog each with 1, 3 and 6 partitions and one trigger, and 6 partitions with two
  triggers in one consumer group (as the platform adds pollers).

Usage: ``python -m bench.bench_ingest [ORDERS]`` (default 40,000); ``make bench`` runs it with the others.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
import urllib.request
import uuid
from typing import Any, NamedTuple

import pg8000.native
from confluent_kafka import Producer

from bench.procs import machine, peak_rss_mb
from bench.results import percentile, record_runs, record_section
from devstack import services
from devstack.stack import running
from orders_core.adapters.kafka_admin import ensure_topic
from orders_core.adapters.kafka_client import client_config
from orders_core.adapters.postgres import COPY_STATEMENTS, content_sha256, copy_rows
from orders_core.config import Settings
from orders_core.domain.model import parse_order
from orders_core.generator.builder import iter_orders

# What `make up` runs with that the test stack does not.
AS_MAKE_UP = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}
PARTITIONS = 3  # make up's topic (KAFKA_TOPIC_PARTITIONS)


# The harness's own connection waits this long for an answer: a COPY of a whole run waits on this machine's
# disk, and once took more than the 10 s the test stack allows.
DB_TIMEOUT_S = 120.0
WARM_UP_ORDERS = 12_000  # two batches a partition


class Backlog(NamedTuple):
    """Orders waiting in Kafka for a drain: their topic, the tag in their ``entry``, how many."""

    topic: str
    tag: str
    count: int


def count_stored(db: pg8000.native.Connection, tag: str) -> int:
    return int(db.run("SELECT count(*) FROM orders WHERE entry = :tag", tag=tag)[0][0])


def committed(triggers: list[services.Service]) -> int:
    """Records the triggers committed (their ``GET /status``; a topic made for the run, so offsets count from
    0): a trigger commits a record once it is stored. Asking them costs PostgreSQL nothing, where counting the
    stored orders reads the whole orders table, which would take CPU from the database under test."""
    offsets: dict[str, int] = {}
    for trigger in triggers:
        with urllib.request.urlopen(f"http://127.0.0.1:{trigger.port}/status", timeout=5) as answer:
            for name, state in json.load(answer)["partitions"].items():
                offsets[name] = max(offsets.get(name, 0), state["committed_offset"] or 0)
    return sum(offsets.values())


def wait_stored(triggers: list[services.Service], db: pg8000.native.Connection, tag: str, count: int) -> None:
    """Until the triggers committed all ``count`` records, then check every order is in the table, once."""
    services.wait_until(lambda: committed(triggers) == count, 600, "records committed", 0.1)
    stored = count_stored(db, tag)
    if stored != count:
        raise RuntimeError(f"{count} records committed but {stored} orders stored")


def make_topic(env: dict[str, str], partitions: int = PARTITIONS) -> str:
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    ensure_topic(
        Settings(
            kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"], kafka_topic=topic, kafka_topic_partitions=partitions
        )
    )
    return topic


def tagged_orders(count: int, seed: int, tag: str) -> list[tuple[str, bytes]]:
    """``count`` generated orders, each with ``entry`` set to ``tag`` (to count a run's orders in one query),
    written as the generator writes them: compact UTF-8 JSON, as ``generate_orders`` produces for ``make up``.
    (``json.dumps``' defaults, spaces and ``\\u`` escapes, made them a third longer and slower to read.)"""
    orders = []
    for uid, value in iter_orders(count, seed=seed):
        order = json.loads(value)
        order["entry"] = tag
        orders.append((uid, json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()))
    return orders


def produce(
    producer: Producer, topic: str, orders: list[tuple[str, bytes]], rate: float | None = None
) -> dict[str, float]:
    """Produce the orders; returns each one's produce time by uid (epoch seconds)."""
    sent_at: dict[str, float] = {}
    started = time.monotonic()
    for index, (uid, value) in enumerate(orders):
        if rate:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent_at[uid] = time.time()
        while True:
            try:
                producer.produce(topic, key=uid.encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    return sent_at


def empty_tables(db: pg8000.native.Connection) -> None:
    """Each drain and each load of the yardstick starts from empty tables: the rounds then repeat one
    measurement, the two sides of the ratio load into tables of the same size, and the scale-out's
    configurations compare alike. On tables that grow through the run each measurement is slower than the one
    before it (larger indexes to insert into), whatever it measures."""
    db.run("TRUNCATE orders, deliveries, payments, items")


# ------------------------------------------------------------------------------------------ the yardstick


def copy_rows_of(orders: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """The rows the ingest would write for ``orders``, made beforehand: the yardstick times only the load."""
    parsed = [parse_order(value) for _, value in orders]
    return copy_rows([(order, content_sha256(order.canonical_json)) for order in parsed])


def copy_rate(db: pg8000.native.Connection, rows: dict[str, bytes], count: int) -> float:
    """Orders per second of loading ``count`` orders' ``rows`` into the four tables with COPY, in one
    transaction, from empty tables."""
    empty_tables(db)
    started = time.perf_counter()
    db.run("START TRANSACTION")
    for table, statement in COPY_STATEMENTS.items():
        db.run(statement, stream=io.BytesIO(rows[table]))
    db.run("COMMIT")
    return count / (time.perf_counter() - started)


# ------------------------------------------------------------------------------------------ end to end


def backlog(env: dict[str, str], producer: Producer, count: int, seed: int, partitions: int = PARTITIONS) -> Backlog:
    """``count`` generated orders produced to a fresh topic of ``partitions`` partitions, all of them one run's."""
    topic, tag = make_topic(env, partitions), uuid.uuid4().hex[:12]
    produce(producer, topic, tagged_orders(count, seed, tag))
    return Backlog(topic, tag, count)


def drain(
    env: dict[str, str],
    work: Any,
    db: pg8000.native.Connection,
    ingest_url: str,
    orders: Backlog,
    triggers: int = 1,
) -> tuple[float, list[services.Service]]:
    """Orders per second of ``triggers`` draining the ``orders`` waiting in Kafka, from empty tables.
    Returns the rate and the triggers, still running (for their memory), to be stopped by the caller."""
    topic, tag, count = orders
    empty_tables(db)
    trigger_env = {**env, "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": f"g-{topic}", "INGEST_URL": ingest_url}
    started_triggers = [
        services.trigger({**trigger_env, "TRIGGER_INSTANCE_ID": f"bench-{n}"}, work, f"trigger-{n}")
        for n in range(triggers)
    ]
    try:
        for trigger in started_triggers:
            trigger.start()
        # The rate comes from the commits' own times, not from when this sees the end.
        wait_stored(started_triggers, db, tag, count)
        return sustained_rate(db, tag), started_triggers
    except BaseException:  # no trigger outlives a failed run, to consume beside the next benchmark
        for trigger in started_triggers:
            trigger.kill()
        raise


def sustained_rate(db: pg8000.native.Connection, tag: str) -> float:
    """Orders per second from the first commit that stored orders of the run to the last one (the server's
    commit timestamps): the orders of the first commit are the start line, not counted."""
    commits = db.run(
        "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 AS at, count(*) FROM orders "
        "WHERE entry = :tag GROUP BY at ORDER BY at",
        tag=tag,
    )
    (first, at_start), (last, _) = commits[0], commits[-1]
    return (sum(n for _, n in commits) - at_start) / max(last - first, 1e-3)


def latency(
    env: dict[str, str],
    work: Any,
    db: pg8000.native.Connection,
    producer: Producer,
    ingest_url: str,
    seed: int,
    rate: int = 1_000,
    count: int = 4_000,
) -> tuple[float, float]:
    """p50 and p99 in ms from produce to the commit that stored each order, at a steady ``rate``."""
    topic, tag = make_topic(env), uuid.uuid4().hex[:12]
    trigger = services.trigger(
        {**env, "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": f"g-{topic}", "INGEST_URL": ingest_url}, work
    ).start()
    try:
        time.sleep(3)  # the consumer joins its group
        sent_at = produce(producer, topic, tagged_orders(count, seed, tag), rate=rate)
        wait_stored([trigger], db, tag, count)
    finally:
        trigger.stop()
    rows = db.run(
        "SELECT order_uid, extract(epoch FROM pg_xact_commit_timestamp(xmin))::float8 FROM orders WHERE entry = :tag",
        tag=tag,
    )
    latencies = [(committed - sent_at[uid]) * 1000 for uid, committed in rows]
    return percentile(latencies, 50), percentile(latencies, 99)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40_000
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    defaults = Settings.model_construct()
    with running("postgres", "memcached", "aws", "kafka") as (env, work, started), contextlib.ExitStack() as stack:
        env = {**env, **AS_MAKE_UP}
        postgres = started["postgres"]
        db = services.connect_db(postgres.port)
        db.run("ALTER SYSTEM SET track_commit_timestamp = on")  # for the latency to the commit
        db.close()
        postgres.stop()
        postgres.start()
        db = services.connect_db(postgres.port, timeout=DB_TIMEOUT_S)
        ingest = services.function("ingest_order", env, work).start()
        stack.callback(ingest.kill)  # stopped below; killed if the run fails, not left running after it
        ingest_url = f"http://127.0.0.1:{ingest.port}/"
        producer = Producer(
            {**client_config(Settings()), "linger.ms": 5, "enable.idempotence": True, "compression.type": "lz4"}
        )
        print(f"machine {machine()}; batch {defaults.trigger_batch_size}, window {defaults.trigger_batch_window_s}s")
        end_to_end: list[float] = []
        bare: list[float] = []
        rss: dict[str, Any] = {}
        # Steady state, as a stack that has been up a while runs: a first drain, not counted, makes each worker's
        # clients (its first batch imports the dead-letter queue's AWS SDK, about a second of CPU) and warms
        # Kafka's JIT (its first drain took two to three times the broker's CPU of the next). Cold starts
        # have a benchmark of their own.
        for trigger in drain(env, work, db, ingest_url, backlog(env, producer, WARM_UP_ORDERS, seed=3))[1]:
            trigger.stop()
        for round_ in range(rounds):
            # The yardstick right before the drain and right after it, the faster of the two: the machine's speed
            # drifts within a round, and a yardstick on one side only carried that drift into the ratio. Not
            # their mean: one COPY of 40,000 orders here once took 70 s (566 orders/s), waiting on the disk.
            rows = copy_rows_of(tagged_orders(count, 1_000 + round_, "copy"))
            orders = backlog(env, producer, count, seed=7 + round_)
            copies = [copy_rate(db, rows, count)]
            rate, triggers = drain(env, work, db, ingest_url, orders)
            rss["trigger"] = peak_rss_mb(triggers[0])
            for trigger in triggers:
                trigger.stop()
            copies.append(copy_rate(db, rows, count))
            end_to_end.append(rate)
            bare.append(max(copies))
            print(
                f"  round {round_ + 1}: end to end {end_to_end[-1]:,.0f} orders/s, COPY {bare[-1]:,.0f} orders/s "
                f"(before {copies[0]:,.0f}, after {copies[1]:,.0f}) = {end_to_end[-1] / bare[-1]:.2f}"
            )
        latencies = [latency(env, work, db, producer, ingest_url, seed=50 + round_) for round_ in range(rounds)]
        print(
            "  latency produce → commit at 1,000/s: " + ", ".join(f"p50 {a:.0f} / p99 {b:.0f} ms" for a, b in latencies)
        )

        scale: list[dict[str, Any]] = []
        for partitions, triggers_n in ((1, 1), (3, 1), (6, 1), (6, 2)):
            orders = backlog(env, producer, count // 2, 200 + partitions * 10 + triggers_n, partitions)
            rate, triggers = drain(env, work, db, ingest_url, orders, triggers_n)
            for trigger in triggers:
                trigger.stop()
            scale.append({"partitions": partitions, "triggers": triggers_n, "orders_per_s": round(rate)})
            print(f"  scale-out: {partitions} partitions, {triggers_n} trigger(s): {rate:,.0f} orders/s")
        rss |= {
            "ingest_order": peak_rss_mb(ingest),
            "postgres": peak_rss_mb(postgres),
            "kafka": peak_rss_mb(started["kafka"]),
        }
        ingest.stop()
        db.close()
        producer.flush(10)
        del producer  # its client would keep reconnecting to the broker stopped below until this process ends

    settings = {
        "batch_size": defaults.trigger_batch_size,
        "batch_window_s": defaults.trigger_batch_window_s,
        "partitions": PARTITIONS,
        "triggers": 1,
        "orders": count,
        "rounds": rounds,
        "ingest_workers": int(env.get("WORKERS", "2")),
        "ingest_threads": int(env.get("THREADS", "8")),
        "log_level": env["LOG_LEVEL"],
    }
    details = record_runs(
        {
            "ingest_vs_postgres": [e / b for e, b in zip(end_to_end, bare, strict=True)],
            "ingest_orders_per_s": end_to_end,
            "ingest_postgres_copy_orders_per_s": bare,
            "ingest_latency_p50_ms": [p50 for p50, _ in latencies],
            "ingest_latency_p99_ms": [p99 for _, p99 in latencies],
        },
        settings,
    )
    record_section("ingest_scale_out", scale)
    record_section("peak_rss_mb", {"ingest": rss})
    record_section("machine", {"ingest": machine()})
    ratio, rate = details["ingest_vs_postgres"], details["ingest_orders_per_s"]["median"]
    print(f"ingest_vs_postgres = {ratio['median']:.2f} (runs {ratio['runs']}); {rate:,.0f} orders/s")


if __name__ == "__main__":
    main()
