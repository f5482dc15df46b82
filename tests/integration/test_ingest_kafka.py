"""End to end through real Kafka: producer → trigger → ingest_order (over HTTP) → PostgreSQL / dead letters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from devstack import services
from devstack.stack import drain
from orders_core.config import Settings
from orders_local.provision import ensure_topic

Orders = list[dict[str, Any]]


@pytest.fixture(scope="session")
def ingest_url(stack_env: dict[str, str], work_dir: Path) -> Iterator[str]:
    service = services.function("ingest_order", stack_env, work_dir).start()
    yield f"http://127.0.0.1:{service.port}/"
    service.stop()


class Pipeline:
    """One test's own topic and consumer group, with the trigger as a real process."""

    def __init__(self, stack_env: dict[str, str], bootstrap: str, ingest_url: str, work_dir: Path) -> None:
        self.topic = f"orders-{uuid.uuid4().hex[:8]}"
        self.env = {
            **stack_env,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": self.topic,
            "KAFKA_GROUP_ID": f"trigger-{self.topic}",
            "INGEST_URL": ingest_url,
            "TRIGGER_BATCH_WINDOW_S": "0.05",
            "TRIGGER_RETRY_MAX_S": "1",
            "LOG_LEVEL": "INFO",
            "TRIGGER_INSTANCE_ID": "trigger-1",  # a static member, as make up runs it: restarted, it resumes at once
        }
        ensure_topic(Settings(**{"kafka_bootstrap_servers": bootstrap, "kafka_topic": self.topic}))
        self.trigger = services.trigger(self.env, work_dir)
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
        self.db = services.connect_db(int(stack_env["PGPORT"]))
        self._store: Any = None

    def produce(self, values: list[bytes], key: bytes | None = None) -> None:
        for value in values:
            self.producer.produce(self.topic, value=value, key=key)
        assert self.producer.flush(30) == 0

    def produce_orders(self, orders: Orders) -> None:
        for order in orders:
            self.producer.produce(self.topic, value=json.dumps(order).encode(), key=order["order_uid"].encode())
        assert self.producer.flush(30) == 0

    def stored_count(self, orders: Orders) -> int:
        uids = [o["order_uid"] for o in orders]
        try:
            rows = self.db.run("SELECT count(*) FROM orders WHERE order_uid = ANY(CAST(:uids AS text[]))", uids=uids)
        except Exception:  # Postgres restarting: reconnect and ask again later
            self.db = services.connect_db(int(self.env["PGPORT"]))
            return -1
        return int(rows[0][0])

    def wait_stored(self, orders: Orders, timeout: float = 60) -> None:
        services.wait_until(lambda: self.stored_count(orders) == len(orders), timeout, "orders stored", 0.2)

    def stored(self, order_uid: str) -> dict[str, Any]:
        from orders_core.adapters.postgres import OrderStore

        if self._store is None:  # one connection for every order a test reads back
            self._store = OrderStore(Settings())
        document = self._store.get_order_json(order_uid)
        assert document is not None
        return dict(json.loads(document))

    def dead_letters(self, settings: Settings) -> list[dict[str, Any]]:
        return [letter for letter in drain(settings) if letter["topic"] == self.topic]

    def committed(self) -> int:
        consumer = Consumer(
            {"bootstrap.servers": self.env["KAFKA_BOOTSTRAP_SERVERS"], "group.id": self.env["KAFKA_GROUP_ID"]}
        )
        try:
            partitions = [TopicPartition(self.topic, p) for p in range(3)]
            return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
        finally:
            consumer.close()

    def close(self) -> None:
        self.trigger.stop()
        self.db.close()


@pytest.fixture
def pipeline(
    stack_env: dict[str, str], kafka_bootstrap: str, ingest_url: str, work_dir: Path, settings: Settings
) -> Iterator[Pipeline]:
    drain(settings)
    made = Pipeline(stack_env, kafka_bootstrap, ingest_url, work_dir)
    yield made
    made.close()
    drain(settings)  # no letter of this test is left for the next one to count


@pytest.fixture(scope="session")
def kafka_letters_ingest_url(stack_env: dict[str, str], kafka_bootstrap: str, work_dir: Path) -> Iterator[str]:
    """ingest_order sending its dead letters to the Kafka topic (DEAD_LETTER_SINK=kafka)."""
    extra = {"DEAD_LETTER_SINK": "kafka", "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    service = services.function("ingest_order", stack_env, work_dir, extra).start()
    yield f"http://127.0.0.1:{service.port}/"
    service.stop()


@pytest.fixture
def letter_pipeline(
    stack_env: dict[str, str],
    kafka_bootstrap: str,
    work_dir: Path,
    dead_letter_settings: Settings,
    request: pytest.FixtureRequest,
) -> Iterator[Pipeline]:
    """A pipeline whose ingest sends dead letters to each destination in turn; orders-dlq reads the same."""
    sink = dead_letter_settings.dead_letter_sink
    url = request.getfixturevalue("ingest_url" if sink == "sqs" else "kafka_letters_ingest_url")
    drain(dead_letter_settings)
    made = Pipeline({**stack_env, "DEAD_LETTER_SINK": sink}, kafka_bootstrap, url, work_dir)
    yield made
    made.close()
    drain(dead_letter_settings)


@pytest.fixture
def many_orders(make_order: Callable[..., dict[str, Any]]) -> Callable[[int], Orders]:
    def make(count: int) -> Orders:
        orders = []
        for i in range(count):
            order = make_order()
            order["items"] = [dict(order["items"][0], chrt_id=i + n, name=f"item {n}") for n in range(1 + i % 5)]
            orders.append(order)
        return orders

    return make


def test_every_produced_order_is_stored_equal(pipeline: Pipeline, many_orders: Callable[[int], Orders]) -> None:
    orders = many_orders(500)
    pipeline.trigger.start()
    pipeline.produce_orders(orders)
    pipeline.wait_stored(orders)
    assert [pipeline.stored(order["order_uid"]) for order in orders] == orders  # every one, each field
    services.wait_until(lambda: pipeline.committed() == len(orders), 20, "offsets committed")


def test_poison_records_are_dead_lettered_and_the_consumer_keeps_moving(
    letter_pipeline: Pipeline,
    make_order: Callable[..., dict[str, Any]],
    many_orders: Callable[[int], Orders],
    dead_letter_settings: Settings,
) -> None:
    pipeline, settings = letter_pipeline, dead_letter_settings
    stored_before = make_order()
    missing_fields = make_order()
    del missing_fields["items"], missing_fields["delivery"]
    poison = [
        b"\xff\xfe\x00garbage",
        b'{"order_uid": ',
        json.dumps(make_order(sm_id="99", payment="cash")).encode(),
        json.dumps(missing_fields).encode(),
        json.dumps(make_order(track_number="TRACK\u0000NUL")).encode(),
        json.dumps(make_order(internal_signature="s" * 100_000)).encode(),
        json.dumps(make_order(date_created="0001-01-01T00:00:00+14:00")).encode(),
        json.dumps({**stored_before, "customer_id": "someone-else"}).encode(),
    ]
    valid = many_orders(50)
    pipeline.produce_orders([stored_before])
    pipeline.trigger.start()
    pipeline.wait_stored([stored_before])
    pipeline.produce(poison[:4])
    pipeline.produce_orders(valid[:25])
    pipeline.produce(poison[4:])
    pipeline.produce_orders(valid[25:])
    pipeline.wait_stored(valid)
    letters: list[dict[str, Any]] = []
    services.wait_until(lambda: len(letters.__iadd__(pipeline.dead_letters(settings))) >= len(poison), 20, "letters")
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == ["conflict", "invalid", "invalid", "invalid", "invalid", "invalid", "not_json", "not_utf8"]
    by_reason = {letter["reason"]: letter for letter in letters}
    assert by_reason["conflict"]["order_uid"] == stored_before["order_uid"]
    assert pipeline.stored(stored_before["order_uid"]) == stored_before
    invalid_fields = sorted(e["field"] for letter in letters if letter["reason"] == "invalid" for e in letter["errors"])
    assert {"sm_id", "payment", "items", "delivery", "track_number", "internal_signature", "date_created"} <= set(
        invalid_fields
    )
    # The consumer moved past every poison record: all offsets are committed.
    services.wait_until(lambda: pipeline.committed() == 1 + len(poison) + len(valid), 20, "offsets committed")


def test_identical_duplicates_are_stored_once(
    pipeline: Pipeline, make_order: Callable[..., dict[str, Any]], settings: Settings
) -> None:
    order = make_order()
    pipeline.trigger.start()
    pipeline.produce_orders([order, order, order])
    pipeline.wait_stored([order])
    services.wait_until(lambda: pipeline.committed() == 3, 20, "offsets committed")
    assert pipeline.stored_count([order]) == 1
    assert pipeline.dead_letters(settings) == []


def test_trigger_killed_mid_stream_loses_nothing_and_stores_once(
    pipeline: Pipeline, many_orders: Callable[[int], Orders], settings: Settings
) -> None:
    orders = many_orders(3000)
    pipeline.produce_orders(orders)
    # Batches of 100: with the default 1,000 the 3,000 orders are one batch a partition, and the three can
    # all be stored before the kill lands.
    pipeline.trigger.env["TRIGGER_BATCH_SIZE"] = "100"
    pipeline.trigger.start()
    services.wait_until(lambda: pipeline.stored_count(orders) > 300, 60, "ingest under way", 0.05)
    pipeline.trigger.kill()  # SIGKILL: no chance to commit what is in flight
    assert pipeline.stored_count(orders) < len(orders), "too late to kill mid-stream"
    pipeline.trigger.start()
    pipeline.wait_stored(orders)
    services.wait_until(lambda: pipeline.committed() == len(orders), 30, "offsets committed")
    assert pipeline.stored_count(orders) == len(orders)
    assert pipeline.dead_letters(settings) == []  # the redelivered ones were duplicates, not conflicts


def test_postgres_down_for_a_while_loses_nothing_and_ingest_resumes_by_itself(
    pipeline: Pipeline, many_orders: Callable[[int], Orders], postgres: services.Service
) -> None:
    before, during = many_orders(200), many_orders(200)
    pipeline.trigger.start()
    pipeline.produce_orders(before)
    pipeline.wait_stored(before)
    postgres.stop()
    try:
        pipeline.produce_orders(during)
        services.wait_until(lambda: "retrying" in pipeline.trigger.log_tail(200), 20, "trigger retrying")
    finally:
        postgres.start()
    pipeline.wait_stored(during)
    services.wait_until(lambda: pipeline.committed() == len(before) + len(during), 30, "offsets committed")


def test_sigterm_finishes_the_batch_in_flight_commits_and_exits(
    pipeline: Pipeline, many_orders: Callable[[int], Orders]
) -> None:
    orders = many_orders(1000)
    pipeline.produce_orders(orders)
    pipeline.trigger.start()
    services.wait_until(lambda: pipeline.stored_count(orders) > 0, 60, "ingest under way", 0.05)
    assert pipeline.trigger.process is not None
    pipeline.trigger.process.send_signal(signal.SIGTERM)
    assert pipeline.trigger.process.wait(30) == 0
    pipeline.trigger.process = None
    # Everything stored is committed, and nothing committed is unstored.
    assert pipeline.committed() == pipeline.stored_count(orders)
    pipeline.trigger.start()
    pipeline.wait_stored(orders)


def orders_dlq_lines(pipeline: Pipeline, *args: str) -> list[str]:
    """Run the dead-letter tool as a person would, against the pipeline's services; the lines it prints."""
    done = subprocess.run(
        [str(services.VENV_BIN / "orders-dlq"), *args],
        env={**os.environ, **pipeline.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # Its first line says what it acts on: the queue or topic of the pipeline's settings, and its Kafka cluster.
    first = done.stderr.splitlines()[0]
    assert first.startswith("orders-dlq: acting on ") and pipeline.env["KAFKA_BOOTSTRAP_SERVERS"] in first, first
    return done.stdout.splitlines()


def orders_dlq(pipeline: Pipeline, *args: str) -> dict[str, Any]:
    """The tool's JSON answer."""
    answer: dict[str, Any] = json.loads("\n".join(orders_dlq_lines(pipeline, *args)))
    return answer


def test_a_record_refused_by_a_rule_is_redriven_after_the_rule_is_relaxed_and_stored(
    letter_pipeline: Pipeline, make_order: Callable[..., dict[str, Any]]
) -> None:
    """GIVEN a database rule refusing one customer's orders, and such an order dead-lettered as store_rejected
    WHEN the rule is relaxed and the letter redriven THEN the order is stored equal, the letter is gone, and the
    redriven record is the refused one exactly: same key, value and headers."""
    pipeline = letter_pipeline
    blocked, other = make_order(customer_id="blocked"), make_order()
    pipeline.db.run("ALTER TABLE orders ADD CONSTRAINT no_blocked CHECK (customer_id <> 'blocked') NOT VALID")
    try:
        pipeline.trigger.start()
        pipeline.produce_orders([blocked, other])
        pipeline.wait_stored([other])
        services.wait_until(lambda: orders_dlq(pipeline, "stats")["letters"] == 1, 60, "the letter")
    finally:
        pipeline.db.run("ALTER TABLE orders DROP CONSTRAINT no_blocked")
    assert orders_dlq(pipeline, "stats")["by_reason"]["store_rejected"]["count"] == 1
    assert orders_dlq(pipeline, "redrive", "--dry-run")["redriven"] == 1
    assert orders_dlq(pipeline, "stats")["letters"] == 1  # a dry run changes nothing

    assert orders_dlq(pipeline, "redrive", "--reason", "store_rejected")["redriven"] == 1

    pipeline.wait_stored([blocked])
    assert pipeline.stored(blocked["order_uid"]) == blocked
    assert orders_dlq(pipeline, "stats")["letters"] == 0
    consumer = Consumer(
        {
            "bootstrap.servers": pipeline.env["KAFKA_BOOTSTRAP_SERVERS"],
            "group.id": uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([pipeline.topic])
    try:
        records: list[Any] = []
        services.wait_until(lambda: len(records.__iadd__(consumer.consume(10, 1.0))) >= 3, 30, "the redriven record")
    finally:
        consumer.close()
    [original, copy] = [r for r in records if r.key() == blocked["order_uid"].encode()]
    assert (copy.key(), copy.value(), copy.headers()) == (original.key(), original.value(), original.headers())


def test_a_letter_cut_to_fit_the_queue_is_redriven_whole_from_kafka_and_never_loops(
    letter_pipeline: Pipeline, make_order: Callable[..., dict[str, Any]]
) -> None:
    """GIVEN an invalid record of 200 KB, dead-lettered with its value cut to fit SQS WHEN it is redriven THEN the
    whole record is read back from Kafka at its offset and produced again (its new letter has the same value
    hash, and counts one redrive); AND a record redriven as often as allowed is left alone."""
    pipeline = letter_pipeline
    huge = make_order(entry="E" * 200_000)  # entry is at most 32 characters: invalid
    pipeline.trigger.start()
    pipeline.produce_orders([huge])
    services.wait_until(lambda: orders_dlq(pipeline, "stats")["letters"] == 1, 60, "the letter")
    [first] = [json.loads(line) for line in orders_dlq_lines(pipeline, "peek")]
    assert first["value_truncated"] and first["reason"] == "invalid"

    assert orders_dlq(pipeline, "redrive", "--reason", "invalid")["redriven"] == 1
    services.wait_until(lambda: orders_dlq(pipeline, "stats")["letters"] == 1, 60, "the redriven record's letter")
    [again] = [json.loads(line) for line in orders_dlq_lines(pipeline, "peek")]
    assert again["value_sha256"] == first["value_sha256"] and again["value_bytes"] == first["value_bytes"]
    assert again["redrives"] == 1

    left = orders_dlq(pipeline, "redrive", "--reason", "invalid", "--max-redrives", "1")
    assert left["redriven"] == 0 and "redriven 1 times already" in next(iter(left["skipped"].values()))
