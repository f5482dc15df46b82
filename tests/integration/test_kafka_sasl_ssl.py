"""Every Kafka client through a secured listener (SASL_SSL, SCRAM-SHA-512, a CA made at the broker's start), set
up by environment variables alone: the generator, orders-setup, the trigger, the ingest behind it, and
``orders-dlq redrive``. A wrong password or an untrusted certificate ends each client with the reason, at once:
librdkafka alone would retry forever, so each run below is given far less time than its own timeouts."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from devstack import services
from orders_core import bootstrap as runtime
from orders_core.adapters.kafka_client import client_config, flush
from orders_core.config import get_settings
from orders_core.generator.producer import GenerateRequest, close_producers, produce_orders

# Far below what a client waits without the fail-fast error callback (a message timeout of 60 s, setup's
# --timeout of 60 s, a trigger forever): a run still going after this is a hang.
HANG_S = 30


@pytest.fixture(scope="module")
def ingest_url(stack_env: dict[str, str], work_dir: Path) -> Iterator[str]:
    service = services.function("ingest_order", stack_env, work_dir).start()
    yield f"http://127.0.0.1:{service.port}/"
    service.stop()


@pytest.fixture
def secured_env(
    stack_env: dict[str, str],
    kafka: services.Service,
    kafka_sasl_ssl: services.SaslSslListener,
    ingest_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, str]]:
    """The environment of a stack whose Kafka is the SASL_SSL listener, on a topic and group of this test's own
    (also set in this process, for the in-process generator)."""
    topic = f"secured-{uuid.uuid4().hex[:8]}"
    env = {
        **stack_env,
        **kafka_sasl_ssl.client_env(),
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"trigger-{topic}",
        "INGEST_URL": ingest_url,
        "TRIGGER_BATCH_WINDOW_S": "0.05",
        "TRIGGER_RETRY_MAX_S": "1",
        "GENERATE_MESSAGE_TIMEOUT_S": "60",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield env
    close_producers()
    runtime.reset()


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One of our command-line tools, as a person runs it, with ``env`` (a hang fails the test)."""
    argv = [str(services.VENV_BIN / command[0]), *command[1:]]
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("KAFKA_")}
    return subprocess.run(argv, env={**inherited, **env}, capture_output=True, text=True, timeout=HANG_S, check=False)


def dlq(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = run(["orders-dlq", *args], env)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def test_orders_travel_the_sasl_ssl_listener_end_to_end_and_a_refused_one_is_redriven(
    secured_env: dict[str, str],
    make_order: Callable[..., dict[str, Any]],
    work_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    """GIVEN only KAFKA_* variables naming the SASL_SSL listener, its SCRAM user and its CA WHEN orders-setup makes
    the topic, the generator produces, and the trigger feeds the ingest THEN every order is stored; AND a record
    refused by a database rule is dead-lettered, kept while a redrive with a wrong password fails, and stored once
    redriven with the right one after the rule is relaxed."""
    setup = run(["orders-setup", "--only", "topic"], {**secured_env, "LOG_LEVEL": "INFO"})
    assert setup.returncode == 0, setup.stderr
    assert f"topic {secured_env['KAFKA_TOPIC']} created" in setup.stderr
    trigger = services.trigger(secured_env, work_dir, name="trigger-sasl-ssl").start()
    request.addfinalizer(trigger.stop)  # also when an assertion fails before the end
    db = services.connect_db(int(secured_env["PGPORT"]))
    db.run("ALTER TABLE orders ADD CONSTRAINT no_blocked_sasl CHECK (customer_id <> 'blocked-sasl') NOT VALID")
    try:
        generated = produce_orders(GenerateRequest(count=10, seed=15), get_settings())
        blocked = make_order(customer_id="blocked-sasl")
        producer = Producer(client_config(get_settings()))
        producer.produce(secured_env["KAFKA_TOPIC"], json.dumps(blocked).encode(), blocked["order_uid"].encode())
        assert flush(producer, 30) == 0

        def stored(uids: list[str]) -> int:
            rows = db.run("SELECT count(*) FROM orders WHERE order_uid = ANY(CAST(:uids AS text[]))", uids=uids)
            return int(rows[0][0])

        services.wait_until(lambda: stored(generated.sample_uids) == 10, 60, "the generated orders stored", 0.2)
        services.wait_until(lambda: dlq(secured_env, "stats")["letters"] == 1, 60, "the refused order's letter")

        refused = run(["orders-dlq", "redrive"], {**secured_env, "KAFKA_SASL_PASSWORD": "not-the-password"})
        assert refused.returncode != 0 and "refused the login" in refused.stderr
        assert dlq(secured_env, "stats")["letters"] == 1  # not deleted: Kafka never acknowledged it
    finally:
        db.run("ALTER TABLE orders DROP CONSTRAINT no_blocked_sasl")
    try:
        assert dlq(secured_env, "redrive")["redriven"] == 1
        services.wait_until(lambda: stored([blocked["order_uid"]]) == 1, 60, "the redriven order stored", 0.2)
        assert dlq(secured_env, "stats")["letters"] == 0
    finally:
        db.close()


@pytest.fixture
def wrong_password(secured_env: dict[str, str]) -> dict[str, str]:
    return {**secured_env, "KAFKA_SASL_PASSWORD": "not-the-password"}


@pytest.fixture
def untrusted_certificate(secured_env: dict[str, str]) -> dict[str, str]:
    """No CA named: the system's authorities, none of which signed the broker's certificate."""
    return {name: value for name, value in secured_env.items() if name != "KAFKA_SSL_CA_LOCATION"}


CLIENTS = {
    "orders-setup": ["orders-setup", "--only", "topic", "--wait", "--timeout", "60"],
    "orders-generate": ["orders-generate", "5", "--no-progress"],
    "orders-trigger": ["orders-trigger"],
}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("fault", "reason"),
    [("wrong_password", "the cluster refused the login"), ("untrusted_certificate", "certificate verify failed")],
)
def test_a_wrong_password_or_an_untrusted_certificate_stops_each_client_with_the_reason(
    client: str, fault: str, reason: str, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = request.getfixturevalue(fault)
    done = run(CLIENTS[client], {**env, "TRIGGER_STATUS_PORT": "0"})
    assert done.returncode != 0
    assert reason in done.stderr


def test_a_settings_combination_that_cannot_work_is_refused_before_connecting(secured_env: dict[str, str]) -> None:
    env = {name: value for name, value in secured_env.items() if name != "KAFKA_SASL_MECHANISM"}
    done = run(["orders-setup", "--only", "topic"], env)
    assert done.returncode != 0 and "needs KAFKA_SASL_MECHANISM" in done.stderr


def test_orders_setup_leaves_an_existing_topic_as_it_is_and_says_how_it_differs(secured_env: dict[str, str]) -> None:
    """GIVEN the topic made with 3 partitions and 1 replica WHEN orders-setup runs asking for 6 and 2 THEN it
    succeeds, warning of both differences; AND a new topic the cluster cannot replicate as asked fails at once
    (no waiting for a broker that will never come), with the cluster's reason."""
    assert run(["orders-setup", "--only", "topic"], secured_env).returncode == 0
    asked_more = {**secured_env, "KAFKA_TOPIC_PARTITIONS": "6", "KAFKA_TOPIC_REPLICATION_FACTOR": "2"}
    again = run(["orders-setup", "--only", "topic"], asked_more)
    assert again.returncode == 0, again.stderr
    assert "3 partitions, fewer than KAFKA_TOPIC_PARTITIONS=6" in again.stderr
    assert "replication factor 1, not KAFKA_TOPIC_REPLICATION_FACTOR=2" in again.stderr
    new_topic = {**asked_more, "KAFKA_TOPIC": f"{secured_env['KAFKA_TOPIC']}-replicated"}
    refused = run(["orders-setup", "--only", "topic", "--wait", "--timeout", "60"], new_topic)
    assert refused.returncode != 0 and "replication factor of 2 cannot be reached" in refused.stderr
