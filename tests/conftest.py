"""Shared fixtures. Services start only when a test asks for them, once per session, on free ports."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack import services, stack
from orders_core import bootstrap as runtime
from orders_core.adapters.kafka_dlq import dead_letter_topics, ensure_topics
from orders_core.adapters.postgres import OrderStore, PostgresSettings, migrate
from orders_core.config import Settings, get_settings, narrow
from orders_core.domain.model import parse_order
from orders_core.generator import producer
from tests.support.events import FIXTURES


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    path = stack.work_dir("test-services")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def running(service: services.Service) -> Iterator[services.Service]:
    service.start()
    yield service
    service.kill()  # its data goes with the work folder: a graceful stop (Kafka's takes ~20 s) buys nothing


@pytest.fixture(scope="session")
def postgres(work_dir: Path) -> Iterator[services.Service]:
    yield from running(services.postgres(work_dir))


@pytest.fixture(scope="session")
def memcached(work_dir: Path) -> Iterator[services.Service]:
    yield from running(services.memcached(work_dir))


@pytest.fixture(scope="session")
def kafka_sasl_ssl(work_dir: Path) -> services.SaslSslListener:
    """The test broker's SASL_SSL listener (SCRAM-SHA-512 user, throwaway CA), for the tests of secured clients."""
    return services.SaslSslListener.for_broker(work_dir)


@pytest.fixture(scope="session")
def kafka(work_dir: Path, kafka_sasl_ssl: services.SaslSslListener) -> Iterator[services.Service]:
    # One broker for every test: the SASL_SSL listener costs a certificate made at start, not a second broker.
    service = services.kafka(work_dir, kafka_sasl_ssl).start()
    yield service
    producer.close_producers()  # or they keep reconnecting to the stopped broker until the process ends
    service.kill()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: services.Service) -> str:
    return f"127.0.0.1:{kafka.port}"


@pytest.fixture(scope="session")
def aws(work_dir: Path) -> Iterator[services.Service]:
    yield from running(services.moto(work_dir))


@pytest.fixture(scope="session")
def stack_env(
    postgres: services.Service, memcached: services.Service, aws: services.Service
) -> Iterator[dict[str, str]]:
    """Environment pointing every setting at the test services (Kafka is added by the tests needing it)."""
    started = {"postgres": postgres, "memcached": memcached, "aws": aws}
    env = stack.environment(started)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        runtime.reset()
        stack.set_up(started, get_settings())
        yield env
    runtime.reset()


@pytest.fixture
def settings(stack_env: dict[str, str]) -> Iterator[Settings]:
    """Fresh settings and clients for one test, against the test services."""
    runtime.reset()
    yield get_settings()
    runtime.reset()


@pytest.fixture(params=["sqs", "kafka"])
def dead_letter_settings(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The test's settings with the dead letters sent to each destination in turn (DEAD_LETTER_SINK): the SQS
    queue (moto) and the Kafka topic (the test broker, the topic made as orders-setup makes it). Readers take
    them through the same mailbox either way (devstack.stack.drain, orders-dlq)."""
    monkeypatch.setenv("DEAD_LETTER_SINK", request.param)
    if request.param == "kafka":
        monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", request.getfixturevalue("kafka_bootstrap"))
        runtime.reset()
        ensure_topics(get_settings(), dead_letter_topics(get_settings()))
    runtime.reset()
    return get_settings()


@pytest.fixture
def store(settings: Settings) -> OrderStore:
    return runtime.order_store()


@pytest.fixture
def empty_database(settings: Settings) -> Iterator[PostgresSettings]:
    """A database of its own, migrated and empty, for a test that changes it as a whole (its statistics, its
    settings); dropped afterwards."""
    admin, name = OrderStore(narrow(settings, PostgresSettings)).connect(), f"t_{uuid.uuid4().hex[:12]}"
    admin.run(f"CREATE DATABASE {name}")
    try:
        own = dataclasses.replace(narrow(settings, PostgresSettings), pg_database=name)
        migrate(own)
        yield own
    finally:
        admin.run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="session")
def sample_order() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "order.json").read_text())
    return data


@pytest.fixture
def make_order(sample_order: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """A valid order with a fresh uid; keyword arguments override top-level fields."""

    def make(**fields: Any) -> dict[str, Any]:
        order = copy.deepcopy(sample_order)
        order["order_uid"] = fields.pop("order_uid", None) or uuid.uuid4().hex
        order["payment"]["transaction"] = order["order_uid"]
        order.update(fields)
        return order

    return make


@pytest.fixture
def stored_order(
    seed_orders: Callable[[list[dict[str, Any]]], None], make_order: Callable[..., dict[str, Any]]
) -> dict[str, Any]:
    """A fresh order, already stored."""
    order = make_order()
    seed_orders([order])
    return order


@pytest.fixture(scope="session")
def seed_orders(stack_env: dict[str, str]) -> Callable[[list[dict[str, Any]]], None]:
    """Store orders directly so the lookup API serves them."""
    store = OrderStore(Settings())

    def seed(orders: list[dict[str, Any]]) -> None:
        store.store_orders([parse_order(json.dumps(o)) for o in orders])

    return seed


@pytest.fixture(scope="session")
def get_order_url(stack_env: dict[str, str], work_dir: Path) -> Iterator[str]:
    """The get_order function over HTTP, started as the native runner starts it (its ASGI adapter)."""
    service = services.function("get_order", stack_env, work_dir, {"CORS_ALLOW_ORIGINS": "*"}).start()
    yield f"http://127.0.0.1:{service.port}"
    service.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test carries the marker of the folder it lives in, so `-m unit` and friends select tiers."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in {"unit", "functions", "integration", "browser", "infra", "faults"}:
            item.add_marker(getattr(pytest.mark, tier))


os.environ.setdefault("LOG_LEVEL", "WARNING")
