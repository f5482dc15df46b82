"""PostgreSQL faults with real SQLSTATEs: while a fault lasts nothing is dead-lettered and every record is
reported failed (so the platform redelivers it); once it is lifted the same event stores each order once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import flask.testing
import pg8000.native
import pytest

from devstack.stack import drain
from orders_core.config import Settings
from tests.support.events import kafka_event, order_bytes
from tests.support.roles import INGEST_PASSWORD, INGEST_ROLE

Connect = Callable[[], pg8000.native.Connection]
Fault = Callable[[pg8000.native.Connection, Connect], contextlib.AbstractContextManager[None]]


def sql_fault(inject: list[str], lift: list[str]) -> Fault:
    """A fault that statements run by the database owner inject, and others lift."""

    @contextlib.contextmanager
    def fault(admin: pg8000.native.Connection, connect: Connect) -> Iterator[None]:
        for statement in inject:
            admin.run(statement)
        try:
            yield
        finally:
            for statement in lift:
                admin.run(statement)

    return fault


@contextlib.contextmanager
def table_locked(admin: pg8000.native.Connection, connect: Connect) -> Iterator[None]:
    """55P03: another session holds a lock on orders longer than the function's lock_timeout."""
    holder = connect()
    holder.run("START TRANSACTION")
    holder.run("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        holder.run("ROLLBACK")
        holder.close()


FAULTS: dict[str, Fault] = {
    # 25006: every new session is read-only.
    "read-only (25006)": sql_fault(
        ["ALTER DATABASE orders SET default_transaction_read_only = on"],
        ["ALTER DATABASE orders RESET default_transaction_read_only"],
    ),
    # 42501: the function's role may no longer insert orders.
    "insert revoked (42501)": sql_fault(
        [f"REVOKE INSERT ON orders FROM {INGEST_ROLE}"], [f"GRANT INSERT ON orders TO {INGEST_ROLE}"]
    ),
    # 42P01: a table renamed away (a migration half done, say).
    "table missing (42P01)": sql_fault(
        ["ALTER TABLE items RENAME TO items_elsewhere"], ["ALTER TABLE items_elsewhere RENAME TO items"]
    ),
    "lock held (55P03)": table_locked,
    # 57014: a trigger makes every insert outlast the function's statement_timeout.
    "statement timeout (57014)": sql_fault(
        [
            "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM pg_sleep(60); "
            "RETURN NEW; END$$",
            "CREATE TRIGGER slow_insert BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION slow_insert()",
        ],
        ["DROP TRIGGER slow_insert ON orders", "DROP FUNCTION slow_insert()"],
    ),
    # 28P01: the function's password is no longer the role's.
    "authentication (28P01)": sql_fault(
        [f"ALTER ROLE {INGEST_ROLE} PASSWORD 'rotated-elsewhere'"],
        [f"ALTER ROLE {INGEST_ROLE} PASSWORD '{INGEST_PASSWORD}'"],
    ),
}


def stored_count(admin: pg8000.native.Connection, orders: list[dict[str, Any]]) -> int:
    uids = [order["order_uid"] for order in orders]
    return int(admin.run("SELECT count(*) FROM orders WHERE order_uid = ANY(CAST(:uids AS text[]))", uids=uids)[0][0])


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_a_store_fault_fails_every_record_and_dead_letters_nothing_then_the_redelivery_stores_once(
    client: flask.testing.FlaskClient,
    admin: pg8000.native.Connection,
    connect_admin: Connect,
    make_order: Any,
    settings: Settings,
    fault: Fault,
) -> None:
    """GIVEN the fault injected into the real PostgreSQL WHEN a batch of two orders and a junk record arrives
    THEN all three are failed and nothing is dead-lettered; AND WHEN the fault is lifted and the same event
    redelivered THEN both orders are stored, once each, and the junk record is dead-lettered."""
    drain(settings)
    orders = [make_order(), make_order()]
    event = kafka_event([order_bytes(orders[0]), b"junk", order_bytes(orders[1])], first_offset=70)
    with fault(admin, connect_admin):
        during = client.post("/", json=event)
    assert during.status_code == 503, during.json
    assert [f["itemIdentifier"] for f in during.json["batchItemFailures"]] == [
        {"partition": "orders-0", "offset": offset} for offset in (70, 71, 72)
    ]
    assert drain(settings) == [] and stored_count(admin, orders) == 0

    after = client.post("/", json=event)
    assert after.status_code == 200 and after.json["batchItemFailures"] == []
    assert (after.json["stored"], after.json["dead_lettered"]) == (2, 1)
    assert client.post("/", json=event).json["duplicates"] == 2  # and once more: nothing new
    assert stored_count(admin, orders) == 2
    assert [(letter["offset"], letter["reason"]) for letter in drain(settings)] == [(71, "not_json")] * 2


def test_a_slow_order_is_split_out_and_redelivered_while_the_rest_of_its_batch_is_stored(
    client: flask.testing.FlaskClient, admin: pg8000.native.Connection, make_order: Any, settings: Settings
) -> None:
    """GIVEN a trigger that makes one customer's insert outlast statement_timeout (57014) WHEN it comes in a
    batch of four THEN the three others are stored, it alone is failed, nothing is dead-lettered; AND once the
    trigger is gone its redelivery stores it."""
    drain(settings)
    admin.run(
        "CREATE FUNCTION slow_customer() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
        "IF NEW.customer_id = 'slow' THEN PERFORM pg_sleep(60); END IF; RETURN NEW; END$$"
    )
    admin.run("CREATE TRIGGER slow_customer BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION slow_customer()")
    orders = [make_order(), make_order(), make_order(customer_id="slow"), make_order()]
    event = kafka_event([order_bytes(order) for order in orders], first_offset=30)
    try:
        during = client.post("/", json=event).json
    finally:
        admin.run("DROP TRIGGER slow_customer ON orders")
        admin.run("DROP FUNCTION slow_customer()")
    assert during["batchItemFailures"] == [{"itemIdentifier": {"partition": "orders-0", "offset": 32}}]
    assert (during["stored"], during["dead_lettered"]) == (3, 0) and drain(settings) == []
    after = client.post("/", json=event).json
    assert (after["stored"], after["duplicates"], after["batchItemFailures"]) == (1, 3, [])
    assert stored_count(admin, orders) == 4


@contextlib.contextmanager
def check_constraint(admin: pg8000.native.Connection, condition: str) -> Iterator[None]:
    """A CHECK constraint on orders (NOT VALID: the rows already stored are not checked)."""
    admin.run(f"ALTER TABLE orders ADD CONSTRAINT under_test CHECK ({condition}) NOT VALID")
    try:
        yield
    finally:
        admin.run("ALTER TABLE orders DROP CONSTRAINT under_test")


def test_a_constraint_refusing_every_order_fails_even_a_lone_record_and_stores_nothing(
    client: flask.testing.FlaskClient, admin: pg8000.native.Connection, make_order: Any, settings: Settings
) -> None:
    """GIVEN a constraint added by mistake that refuses every order (23514) WHEN a batch of one order arrives
    THEN it is failed, not dead-lettered (a known-good order, tried and rolled back, is refused alike), and
    the probe left nothing behind; AND once the constraint is dropped its redelivery stores it."""
    drain(settings)
    before = int(admin.run("SELECT count(*) FROM orders")[0][0])
    order = make_order()
    event = kafka_event([order_bytes(order)], first_offset=90)
    with check_constraint(admin, "order_uid = ''"):
        during = client.post("/", json=event)
    assert during.status_code == 503 and drain(settings) == []
    assert int(admin.run("SELECT count(*) FROM orders")[0][0]) == before
    assert client.post("/", json=event).json["stored"] == 1


def test_orders_a_constraint_refuses_for_their_content_are_dead_lettered_even_alone_in_their_batch(
    client: flask.testing.FlaskClient,
    admin: pg8000.native.Connection,
    make_order: Any,
    dead_letter_settings: Settings,
) -> None:
    """GIVEN a constraint that refuses one customer's orders WHEN a batch holds only two such orders (the
    tail of a quiet partition) THEN both are dead-lettered as store_rejected (to either destination): the
    partition is not held."""
    settings = dead_letter_settings
    drain(settings)
    orders = [make_order(customer_id="blocked"), make_order(customer_id="blocked")]
    with check_constraint(admin, "customer_id <> 'blocked'"):
        answer = client.post("/", json=kafka_event([order_bytes(o) for o in orders], first_offset=95)).json
    assert answer["batchItemFailures"] == [] and answer["dead_lettered"] == 2
    assert [letter["reason"] for letter in drain(settings)] == ["store_rejected"] * 2
