"""get_order on a real streaming replica (pg_basebackup of the test primary): it reads the replica, and an
order the replica has not replayed yet is found on the primary, never answered 404."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pg8000.native
import pytest

from devstack import services
from orders_core import bootstrap
from orders_core.config import get_settings


@pytest.fixture(scope="module")
def replica(postgres: services.Service, stack_env: dict[str, str], work_dir: Path) -> Iterator[services.Service]:
    """A streaming replica of the test primary, copied once its schema is migrated (stack_env)."""
    service = services.postgres(work_dir, replica_of=postgres.port).start()
    yield service
    service.stop()


@pytest.fixture
def lookup(replica: services.Service, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """GET /orders/{uid} through the composition root, reading the replica; no cache tier, so each lookup
    shows which database answered."""
    for name, value in {
        "PG_REPLICA_HOST": "127.0.0.1",
        "PG_REPLICA_PORT": str(replica.port),
        "MEMCACHED_SERVERS": "",
        "CACHE_LRU_SIZE": "0",
    }.items():
        monkeypatch.setenv(name, value)
    bootstrap.reset()
    yield lambda uid: bootstrap.lookup_service().handle("GET", f"/orders/{uid}", {}, {})
    bootstrap.reset()


@pytest.fixture
def replay(replica: services.Service) -> Iterator[Callable[[bool], None]]:
    """Pause or resume the replica's replay of the primary's WAL: replication lag on demand."""
    conn = services.connect_db(replica.port)

    def set_replaying(on: bool) -> None:
        conn.run("SELECT pg_wal_replay_resume()" if on else "SELECT pg_wal_replay_pause()")

    yield set_replaying
    set_replaying(True)
    conn.close()


def on_replica(replica: services.Service, uid: str) -> bool:
    conn = services.connect_db(replica.port)
    try:
        return bool(conn.run("SELECT count(*) FROM orders WHERE order_uid = :uid", uid=uid)[0][0])
    finally:
        conn.close()


def lag_bytes(replica: services.Service) -> int:
    """WAL received by the replica but not replayed yet: the lag, made visible."""
    conn = services.connect_db(replica.port)
    try:
        [[lag]] = conn.run("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())")
        return int(lag)
    finally:
        conn.close()


def test_an_order_not_yet_on_the_replica_is_found_on_the_primary(
    replica: services.Service,
    lookup: Callable[[str], Any],
    replay: Callable[[bool], None],
    stored_order: dict[str, Any],
    make_order: Callable[..., dict[str, Any]],
    seed_orders: Callable[[list[dict[str, Any]]], None],
) -> None:
    services.wait_until(lambda: on_replica(replica, stored_order["order_uid"]), 30, "the replica to catch up")
    replay(False)
    lagging = make_order()
    seed_orders([lagging])
    services.wait_until(lambda: lag_bytes(replica) > 0, 30, "the replica to receive WAL it does not replay")
    assert not on_replica(replica, lagging["order_uid"])

    answer = lookup(lagging["order_uid"])

    assert answer.status == 200 and json.loads(answer.body) == lagging


def test_lookups_read_the_replica(
    replica: services.Service,
    lookup: Callable[[str], Any],
    replay: Callable[[bool], None],
    stored_order: dict[str, Any],
) -> None:
    uid = stored_order["order_uid"]
    services.wait_until(lambda: on_replica(replica, uid), 30, "the replica to replay the order")
    replay(False)  # the primary forgets the order; the paused replica still has it
    settings = get_settings()
    primary = pg8000.native.Connection(
        settings.pg_user,
        password=settings.pg_password,
        host=settings.pg_host,
        port=settings.pg_port,
        database=settings.pg_database,
    )
    primary.run("DELETE FROM orders WHERE order_uid = :uid", uid=uid)
    primary.close()

    answer = lookup(uid)

    assert answer.status == 200 and json.loads(answer.body) == stored_order


def test_an_order_on_neither_database_is_not_found(lookup: Callable[[str], Any]) -> None:
    assert lookup("no-such-order-anywhere").status == 404
