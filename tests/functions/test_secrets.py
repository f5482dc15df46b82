"""The database password from Secrets Manager (moto), through ingest_order in-process against real PostgreSQL.

Each test gets its own PostgreSQL role and secret, so a rotation here never disturbs another test.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import flask.testing
import functions_framework
import pg8000.native
import pytest

from orders_core import bootstrap as runtime
from orders_core.adapters import postgres as storage
from orders_core.adapters import secrets
from orders_core.config import Settings, get_settings
from tests.support.events import kafka_event, order_bytes

SOURCE = "functions/ingest_order/main.py"


@dataclass
class Rotation:
    """A role whose password lives in a secret; ``rotate`` changes one or both, as a rotation does in steps."""

    role: str
    secret_id: str
    admin: pg8000.native.Connection
    secrets: Any

    def set_role_password(self, password: str) -> None:
        self.admin.run(f"ALTER ROLE {pg8000.native.identifier(self.role)} PASSWORD {pg8000.native.literal(password)}")

    def set_secret_password(self, password: str) -> None:
        self.secrets.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps({"password": password}))

    def stored(self, order: dict[str, Any]) -> bool:
        return bool(self.admin.run("SELECT 1 FROM orders WHERE order_uid = :uid", uid=order["order_uid"]))

    def drop_connections(self) -> None:
        """What a database restart or failover does to the function's open connections."""
        self.admin.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :role", role=self.role)


@pytest.fixture
def rotation(stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Rotation]:
    role, password = f"rotating_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = pg8000.native.Connection(
        "orders", password="orders", port=int(stack_env["PGPORT"]), database="orders", timeout=10
    )
    quoted = pg8000.native.identifier(role)
    admin.run(f"CREATE ROLE {quoted} LOGIN PASSWORD {pg8000.native.literal(password)}")
    admin.run(f"GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO {quoted}")
    secrets = boto3.client("secretsmanager", endpoint_url=stack_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    secret_id = secrets.create_secret(Name=f"orders-db-{role}", SecretString=json.dumps({"password": password}))["ARN"]
    monkeypatch.setenv("PGUSER", role)
    monkeypatch.setenv("PGPASSWORD", "not-the-password")  # the environment must not be where it comes from
    monkeypatch.setenv("PG_PASSWORD_SECRET_ID", secret_id)
    # A rotation here comes seconds after the first read, not hours: no interval between reads unless a test
    # sets one.
    monkeypatch.setenv("PG_PASSWORD_SECRET_MIN_INTERVAL_S", "0")
    runtime.reset()
    rotation = Rotation(role, secret_id, admin, secrets)
    yield rotation
    runtime.reset()
    rotation.drop_connections()
    admin.run(f"DROP OWNED BY {quoted}")
    admin.run(f"DROP ROLE {quoted}")
    admin.close()
    secrets.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)


@pytest.fixture
def secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of the secret, as the password it returned."""
    reads: list[str] = []
    real = secrets.read_secret_password
    lock = threading.Lock()

    def counted(settings: Settings) -> str:
        password = real(settings)
        with lock:
            reads.append(password)
        return password

    monkeypatch.setattr(secrets, "read_secret_password", counted)
    return reads


@pytest.fixture
def ingest(rotation: Rotation) -> Callable[[list[dict[str, Any]]], flask.testing.TestResponse]:
    client = functions_framework.create_app(target="http_entry", source=SOURCE).test_client()

    def post(orders: list[dict[str, Any]]) -> flask.testing.TestResponse:
        return client.post("/", json=kafka_event([order_bytes(o) for o in orders]))

    return post


def test_the_password_is_read_from_the_secret_once_per_warm_instance(
    ingest: Callable[..., Any], rotation: Rotation, secret_reads: list[str], make_order: Any
) -> None:
    for _ in range(3):
        order = make_order()
        assert ingest([order]).json["stored"] == 1
        assert rotation.stored(order)
    assert len(secret_reads) == 1
    assert get_settings().pg_password == "not-the-password"


def test_a_rotation_mid_ingest_costs_one_reconnect_and_no_order(
    ingest: Callable[..., Any], rotation: Rotation, secret_reads: list[str], make_order: Any
) -> None:
    # GIVEN an ingest that has stored a batch with the password it read from the secret
    assert ingest([make_order()]).json["stored"] == 1
    # WHEN the password is rotated (the role's and the secret's) and the function's connection is dropped
    new_password = uuid.uuid4().hex
    rotation.set_role_password(new_password)
    rotation.set_secret_password(new_password)
    rotation.drop_connections()
    # THEN the next batch is stored: PostgreSQL refuses the old password once, the secret is read again
    orders = [make_order() for _ in range(3)]
    response = ingest(orders)
    assert response.status_code == 200 and response.json["stored"] == 3
    assert all(rotation.stored(order) for order in orders)
    assert secret_reads[1:] == [new_password]


def test_a_batch_during_the_rotation_window_is_retried_not_dead_lettered(
    ingest: Callable[..., Any], rotation: Rotation, make_order: Any
) -> None:
    # GIVEN a role whose password was changed before the secret was (a rotation in progress)
    rotation.drop_connections()
    new_password = uuid.uuid4().hex
    rotation.set_role_password(new_password)
    orders = [make_order() for _ in range(2)]
    # WHEN a batch arrives, THEN every record is failed for a retry and none is dead-lettered
    response = ingest(orders)
    assert response.status_code == 503
    assert len(response.json["batchItemFailures"]) == len(orders)
    assert response.json.get("dead_lettered", 0) == 0
    assert not any(rotation.stored(order) for order in orders)
    # and once the secret holds the new password, the redelivered batch is stored
    rotation.set_secret_password(new_password)
    assert ingest(orders).json["stored"] == len(orders)
    assert all(rotation.stored(order) for order in orders)


def test_threads_connecting_during_a_rotation_read_the_secret_once_an_interval_and_fail_fast(
    rotation: Rotation, secret_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rotation in progress (the role's password changed, the secret not yet), and an interval between
    # reads longer than the test takes
    monkeypatch.setenv("PG_PASSWORD_SECRET_MIN_INTERVAL_S", "600")
    runtime.reset()
    rotation.set_role_password(uuid.uuid4().hex)
    store = runtime.order_store()

    def connect_five_times() -> list[str]:
        outcomes = []
        for _ in range(5):
            try:
                store.connect().close()
                outcomes.append("connected")
            except storage.StoreUnavailable:
                outcomes.append("unavailable")
        return outcomes

    # WHEN eight threads connect five times each
    with ThreadPoolExecutor(8) as threads:
        outcomes = [o for done in [threads.submit(connect_five_times) for _ in range(8)] for o in done.result(60)]
    # THEN every connection fails for a retry, and the secret was read once (it was 41 times, one at a time)
    assert outcomes == ["unavailable"] * 40
    assert len(secret_reads) == 1


def test_a_lookup_while_the_secret_cannot_be_read_is_a_503(rotation: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_PASSWORD_SECRET_ID", rotation.secret_id + "-gone")
    runtime.reset()
    client = functions_framework.create_app(target="http_entry", source="functions/get_order/main.py").test_client()
    response = client.get(f"/orders/{uuid.uuid4().hex}")
    assert response.status_code == 503 and response.headers["Retry-After"]


def test_reading_the_secret_is_one_request_given_up_after_its_timeout(
    rotation: Rotation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Secrets Manager that takes connections and never answers
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("PG_PASSWORD_SECRET_TIMEOUT_S", "0.2")
        get_settings.cache_clear()
        # WHEN the password is read, THEN it fails as an outage after one request: no retries piling up
        with pytest.raises(storage.StoreUnavailable, match="Secrets Manager"):
            secrets.read_secret_password(get_settings())
        assert pending_connections(silent) == 1


def pending_connections(listening: socket.socket) -> int:
    """How many connections wait in the socket's backlog."""
    listening.setblocking(False)
    count = 0
    while True:
        try:
            accepted, _ = listening.accept()
        except BlockingIOError:
            return count
        accepted.close()
        count += 1
