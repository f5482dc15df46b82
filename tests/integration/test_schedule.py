"""orders-scheduler as `make up` runs it, invoking the real generate_orders (the native runner's script) onto Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from devstack import services
from orders_core.domain.model import parse_order

COUNT = 4


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = f"test-schedule-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)
    yield name
    admin.delete_topics([name])[name].result(30)


def wait_for_records(bootstrap: str, topic: str, at_least: int, timeout_s: float) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < at_least and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=100, timeout=0.5):
                assert message.error() is None, message.error()
                values.append(message.value())
        return values
    finally:
        consumer.close()


def end_offset(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


def test_a_scheduled_invocation_waits_for_the_function_and_produces_the_scheduled_count(
    stack_env: dict[str, str], kafka_bootstrap: str, topic: str, work_dir: Path
) -> None:
    kafka_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC": topic}
    generate = services.function("generate_orders", {**stack_env, **kafka_env}, work_dir)
    schedule_env = {
        "GENERATE_URL": f"http://127.0.0.1:{generate.port}",
        "GENERATE_SCHEDULE": "rate(7 days)",  # runs at once; the next occurrence (a Thursday, 00:00 UTC) is later
        "GENERATE_SCHEDULE_COUNT": str(COUNT),
        "GENERATE_SCHEDULE_RETRY_MAX_S": "1",
        "LOG_LEVEL": "INFO",
        "SCHEDULER_STATUS_PORT": str(services.free_port()),
    }
    scheduler = services.Service(
        "scheduler", ["orders-scheduler"], {**stack_env, **kafka_env, **schedule_env}, 0, work_dir, lambda: True
    )
    try:
        # GIVEN the scheduler's first occurrence (a rate runs at once) finding generate_orders down
        scheduler.start()
        services.wait_until(lambda: "unreachable" in scheduler.log_tail(), 60, "a first, failed invocation")
        # WHEN the function comes up
        generate.start()
        # THEN the scheduler's retries reach it, and once it says the function took the occurrence, the topic
        # holds exactly the schedule's count of valid orders: not one more for the tries that failed
        services.wait_until(lambda: "generate_orders: {" in scheduler.log_tail(), 120, "the occurrence taken")
        values = wait_for_records(kafka_bootstrap, topic, COUNT, timeout_s=30)
        assert end_offset(kafka_bootstrap, topic) == COUNT == len(values), scheduler.log_tail()
        assert all(parse_order(value) for value in values)
        # and its /health says the occurrence was taken and when the next one is due
        health_url = f"http://127.0.0.1:{schedule_env['SCHEDULER_STATUS_PORT']}/health"
        with urllib.request.urlopen(health_url, timeout=10) as answer:
            health = json.loads(answer.read())
        expected = ("ok", schedule_env["GENERATE_SCHEDULE"], "invoked")
        assert (health["status"], health["schedule"], health["last_outcome"]) == expected
        assert health["next_due"] > health["last_occurrence"]
        # and SIGTERM stops the scheduler cleanly
        assert scheduler.stop() == 0
    finally:
        scheduler.stop()
        generate.stop()


def test_an_expression_eventbridge_would_refuse_stops_the_scheduler_with_a_reason() -> None:
    env = {**os.environ, "GENERATE_SCHEDULE": "cron(0 10 * * * *)", "SCHEDULER_STATUS_PORT": "0"}
    argv = [str(services.VENV_BIN / "orders-scheduler")]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "day-of-week must be '?'" in done.stderr
