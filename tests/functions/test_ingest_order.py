"""ingest_order in-process, both adapters, against real PostgreSQL, memcached and the moto SQS server."""

from __future__ import annotations

import base64
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask.testing
import functions_framework
import pytest

from devstack.stack import drain
from orders_core import bootstrap as runtime
from orders_core.adapters.postgres import COPY_STATEMENTS, OrderStore, PostgresSettings, content_sha256, copy_rows
from orders_core.config import Settings
from orders_core.domain.model import parse_order
from orders_core.domain.ports import StoreOutcome
from tests.support.events import aws_partial_response, kafka_event, order_bytes

SOURCE = "functions/ingest_order/main.py"


@pytest.fixture
def client(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source=SOURCE).test_client()


def test_valid_orders_are_stored_equal_and_written_through_to_the_cache(
    client: flask.testing.FlaskClient, store: OrderStore, make_order: Any, settings: Settings
) -> None:
    orders = [make_order() for _ in range(3)]
    response = client.post("/", json=kafka_event([order_bytes(o) for o in orders]))
    assert response.status_code == 200
    assert response.json == {"stored": 3, "duplicates": 0, "dead_lettered": 0, "batchItemFailures": []}
    for order in orders:
        assert json.loads(store.get_order_json(order["order_uid"]) or b"") == order
        runtime.order_cache().local.clear()
        cached, tier = runtime.order_cache().get(order["order_uid"])
        assert tier == "memcached" and json.loads(cached or b"") == order


def test_redelivered_batch_is_harmless(client: flask.testing.FlaskClient, make_order: Any) -> None:
    event = kafka_event([order_bytes(make_order())])
    assert client.post("/", json=event).json["stored"] == 1
    assert client.post("/", json=event).json == {
        "stored": 0,
        "duplicates": 1,
        "dead_lettered": 0,
        "batchItemFailures": [],
    }


def test_poison_records_reach_the_dead_letter_queue_with_reasons(
    client: flask.testing.FlaskClient, store: OrderStore, make_order: Any, settings: Settings
) -> None:
    drain(settings)
    good, conflicting_base = make_order(), make_order()
    assert client.post("/", json=kafka_event([order_bytes(conflicting_base)])).status_code == 200
    missing = make_order()
    del missing["payment"]
    values = [
        b"\x00\x01garbage",
        order_bytes(make_order(sm_id="ninety-nine")),
        order_bytes(missing),
        order_bytes(make_order(customer_id="a\u0000b")),
        order_bytes(make_order(entry="E" * 10_000)),
        order_bytes({**conflicting_base, "entry": "CHANGED"}),
        order_bytes(good),
    ]
    response = client.post("/", json=kafka_event(values, first_offset=100))
    assert response.json["stored"] == 1 and response.json["dead_lettered"] == 6
    letters = sorted(drain(settings), key=lambda letter: letter["offset"])
    assert [(letter["offset"], letter["reason"]) for letter in letters] == [
        (100, "not_json"),
        (101, "invalid"),
        (102, "invalid"),
        (103, "invalid"),
        (104, "invalid"),
        (105, "conflict"),
    ]
    assert letters[1]["errors"] == [{"field": "sm_id", "message": "Input should be a valid integer"}]
    assert {"field": "payment", "message": "Field required"} in letters[2]["errors"]
    assert letters[3]["errors"][0]["field"] == "customer_id"
    assert "at most 32 characters" in letters[4]["errors"][0]["message"]
    assert base64.b64decode(letters[0]["value"]) == b"\x00\x01garbage"
    assert letters[0]["topic"] == "orders" and letters[0]["partition"] == 0
    assert json.loads(store.get_order_json(conflicting_base["order_uid"]) or b"")["entry"] == conflicting_base["entry"]
    assert store.get_order_json(good["order_uid"]) is not None


def test_an_order_postgres_refuses_is_dead_lettered_and_the_batch_stored(
    client: flask.testing.FlaskClient, store: OrderStore, make_order: Any, settings: Settings
) -> None:
    drain(settings)
    conn = store.connect()
    conn.run(
        "CREATE FUNCTION refuse_order() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'customer % is refused', NEW.customer_id USING ERRCODE = 'check_violation'; END$$"
    )
    conn.run(
        "CREATE TRIGGER refuse_order BEFORE INSERT ON orders FOR EACH ROW "
        "WHEN (NEW.customer_id = 'refused-customer') EXECUTE FUNCTION refuse_order()"
    )
    try:
        orders = [make_order(), make_order(customer_id="refused-customer"), make_order()]
        response = client.post("/", json=kafka_event([order_bytes(o) for o in orders], first_offset=40))
    finally:
        conn.run("DROP TRIGGER refuse_order ON orders")
        conn.run("DROP FUNCTION refuse_order()")
        conn.close()
    assert response.status_code == 200
    assert response.json["stored"] == 2 and response.json["dead_lettered"] == 1
    [letter] = drain(settings)
    assert (letter["reason"], letter["offset"]) == ("store_rejected", 41)
    assert "customer refused-customer is refused" in letter["message"]
    assert store.get_order_json(orders[1]["order_uid"]) is None
    assert store.get_order_json(orders[2]["order_uid"]) is not None


def test_postgres_unreachable_answers_503_with_every_record_to_redeliver(
    client: flask.testing.FlaskClient, make_order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPORT", "1")  # nothing listens there
    runtime.reset()
    response = client.post("/", json=kafka_event([order_bytes(make_order()), b"junk"], first_offset=7))
    assert response.status_code == 503
    assert response.json["batchItemFailures"] == [
        {"itemIdentifier": {"partition": "orders-0", "offset": 7}},
        {"itemIdentifier": {"partition": "orders-0", "offset": 8}},
    ]


def test_dead_letter_queue_unreachable_fails_only_the_refused_records(
    client: flask.testing.FlaskClient, make_order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    runtime.reset()
    response = client.post("/", json=kafka_event([order_bytes(make_order()), b"junk"], first_offset=3))
    assert response.status_code == 200
    assert response.json["stored"] == 1
    assert response.json["batchItemFailures"] == [{"itemIdentifier": {"partition": "orders-0", "offset": 4}}]


class Ran:
    """What an invocation leaves behind: letters in the queue, orders stored. Empty when nothing ran."""

    def __init__(self, settings: Settings, store: OrderStore) -> None:
        self._settings, self._store = settings, store
        drain(settings)  # what earlier tests left is not ours

    def since(self, *orders: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
        stored = [order["order_uid"] for order in orders if self._store.get_order_json(order["order_uid"])]
        return drain(self._settings), stored


@pytest.fixture
def ran(settings: Settings, store: OrderStore) -> Ran:
    return Ran(settings, store)


def test_not_a_kafka_event_is_a_400_and_get_is_a_405(client: flask.testing.FlaskClient, ran: Ran) -> None:
    assert client.post("/", data=b"[]", content_type="application/json").status_code == 400
    assert client.post("/", json={"records": {"orders-0": [{"topic": "x"}]}}).json["error"] == "bad_request"
    assert client.get("/").status_code == 405
    assert ran.since() == ([], [])


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "text/json"]
)
def test_only_json_is_accepted(
    client: flask.testing.FlaskClient, content_type: str | None, make_order: Any, ran: Ran
) -> None:
    """A web page can POST these to any address without asking first: they are refused before anything runs."""
    order = make_order()
    body = json.dumps(kafka_event([order_bytes(order), b"not an order"]))
    response = client.post("/", data=body, content_type=content_type)
    assert response.status_code == 415 and response.json["error"] == "unsupported_media_type"
    assert ran.since(order) == ([], [])
    charset = client.post("/", data=body, content_type="application/json; charset=utf-8")
    assert charset.status_code == 200
    letters, stored = ran.since(order)
    assert [letter["reason"] for letter in letters] == ["not_json"] and stored == [order["order_uid"]]


class Unreadable(io.BytesIO):
    """A request body that must not be read."""

    def read(self, size: int | None = -1) -> bytes:
        raise AssertionError("the body was read")

    readline = read  # type: ignore[assignment]

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read")


CHUNKED = {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}  # as gunicorn passes one on


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("INGEST_MAX_BODY_BYTES", "65536")
    runtime.reset()
    return 65536


def test_a_body_declared_over_the_limit_is_refused_with_413_unread(
    client: flask.testing.FlaskClient, small_limit: int, ran: Ran
) -> None:
    response = client.post(
        "/",
        input_stream=Unreadable(),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(small_limit + 1)},
    )
    assert response.status_code == 413 and response.json["error"] == "payload_too_large"
    assert ran.since() == ([], [])


def test_a_body_of_no_declared_length_is_read_no_further_than_the_limit(
    client: flask.testing.FlaskClient, small_limit: int, make_order: Any, ran: Ran
) -> None:
    # GIVEN a chunked event (no Content-Length) over the limit, its orders first
    orders = [make_order() for _ in range(60)]
    body = json.dumps(kafka_event([order_bytes(order) for order in orders])).encode()
    assert len(body) > small_limit
    stream = io.BytesIO(body)
    response = client.post("/", input_stream=stream, content_type="application/json", environ_overrides=CHUNKED)
    # THEN it is refused, no more of it read than the limit, and nothing ran
    assert response.status_code == 413
    assert stream.tell() <= small_limit + 64 * 1024  # the limit, and at most one read's worth past it
    assert ran.since(*orders) == ([], [])
    # and an event within the limit, chunked alike, is ingested
    small = json.dumps(kafka_event([order_bytes(orders[0])])).encode()
    response = client.post(
        "/",
        input_stream=io.BytesIO(small),
        content_type="application/json",
        environ_overrides=CHUNKED,
    )
    assert response.status_code == 200 and response.json["stored"] == 1


def test_the_ingest_takes_every_event_the_trigger_sends(settings: Settings) -> None:
    assert settings.ingest_max_body_bytes >= settings.trigger_max_event_bytes


def malformed(change: Any) -> bytes:
    event = kafka_event([b"{}"])
    change(event["records"]["orders-0"][0], event)
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[" * 100_000,  # nested too deeply for the JSON parser
        malformed(lambda record, _: record.update(value=12345)),
        malformed(lambda record, _: record.update(offset="fifteen")),
        malformed(lambda record, _: record.update(offset=1.5)),
        malformed(lambda record, _: record.update(headers=[{"h": 10**12}])),
        malformed(lambda _, event: event.update(records={"orders-0": {"offset": 1}})),
        malformed(lambda _, event: event.update(records=[event["records"]])),
    ],
)
def test_a_malformed_event_is_a_400(client: flask.testing.FlaskClient, body: bytes, ran: Ran) -> None:
    response = client.post("/", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "bad_request"
    assert ran.since() == ([], [])  # not even the well-formed records of it (b"{}") were dead-lettered


def test_lambda_handler_stores_the_same_event(store: OrderStore, make_order: Any, settings: Settings) -> None:
    from functions.ingest_order import main

    order = make_order()
    assert main.handler(kafka_event([order_bytes(order)]), None) == {"batchItemFailures": []}
    assert json.loads(store.get_order_json(order["order_uid"]) or b"") == order


def test_lambda_handler_raises_when_nothing_was_stored_so_the_platform_retries(
    make_order: Any, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    from functions.ingest_order import main

    monkeypatch.setenv("PGPORT", "1")
    runtime.reset()
    with pytest.raises(main.BatchNotStored):
        main.handler(kafka_event([order_bytes(make_order())]), None)


def test_lambda_handler_reports_the_records_to_redeliver_as_aws_expects(
    make_order: Any, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    """GIVEN the dead-letter queue unreachable WHEN a batch holds an order and junk THEN the handler stores
    the order and returns (not raises) the junk's identifier, exactly as Powertools reports it to AWS: the
    partial batch response alone, the counts in the log."""
    from functions.ingest_order import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    runtime.reset()
    event = kafka_event([order_bytes(make_order()), b"junk"], first_offset=20)
    answer = main.handler(event, None)
    assert answer == {"batchItemFailures": aws_partial_response(event, {(0, 21)})}


def test_dead_letters_too_large_for_one_batch_are_all_sent(
    client: flask.testing.FlaskClient, make_order: Any, settings: Settings
) -> None:
    """Ten letters of ~200 KiB each are over SQS's limit for one batch: they go in several."""
    drain(settings)
    values = [order_bytes(make_order(entry="E" * 200_000)) for _ in range(10)]
    response = client.post("/", json=kafka_event(values, first_offset=500))
    assert response.status_code == 200 and response.json["dead_lettered"] == 10
    letters = drain(settings)
    assert sorted(letter["offset"] for letter in letters) == list(range(500, 510))
    assert all(letter["value_truncated"] for letter in letters)


def test_an_order_hashed_in_an_older_canonical_form_is_compared_by_content(
    client: flask.testing.FlaskClient, store: OrderStore, make_order: Any, settings: Settings
) -> None:
    """GIVEN a stored order whose hash was made by another canonical form (version 0, a hash that no longer
    matches) WHEN it is redelivered THEN it is a duplicate, not a conflict; other content is still a conflict."""
    drain(settings)
    order = make_order()
    assert client.post("/", json=kafka_event([order_bytes(order)])).json["stored"] == 1
    conn = store.connect()
    conn.run(
        "UPDATE orders SET content_hash_version = 0, content_sha256 = '\\x00' WHERE order_uid = :uid",
        uid=order["order_uid"],
    )
    conn.close()
    redelivered = client.post("/", json=kafka_event([order_bytes(order)])).json
    assert (redelivered["duplicates"], redelivered["dead_lettered"]) == (1, 0)
    changed = client.post("/", json=kafka_event([order_bytes({**order, "entry": "OTHER"})])).json
    assert changed["dead_lettered"] == 1 and [letter["reason"] for letter in drain(settings)] == ["conflict"]


def test_strings_copy_would_read_as_its_own_syntax_are_stored_and_served_unchanged(
    client: flask.testing.FlaskClient, store: OrderStore, make_order: Any
) -> None:
    """Orders are written with COPY, whose text format gives a tab, a newline, a backslash and ``\\N`` meanings
    of their own: in a value they are only text."""
    tricky = make_order(entry="\\N", internal_signature="a\tb\nc\rd\\e\\.\n\\.", customer_id="«ü» ✓ \\x41")
    tricky["delivery"]["address"] = "line 1\nline 2\t\\"
    tricky["items"][0]["name"] = "\\"
    plain = make_order()
    response = client.post("/", json=kafka_event([order_bytes(tricky), order_bytes(plain)]))
    assert response.json["stored"] == 2
    for order in (tricky, plain):
        assert json.loads(store.get_order_json(order["order_uid"]) or b"") == order


def test_a_batch_racing_another_writer_of_one_of_its_orders_stores_the_rest_and_counts_it_a_duplicate(
    store: OrderStore, make_order: Any, settings: Settings
) -> None:
    """GIVEN another session that wrote one of the batch's orders and has not committed yet WHEN the batch is
    stored and the other session commits THEN the batch waits for it, is refused a unique key by PostgreSQL,
    is written again, and every order is stored once: that one as a duplicate."""
    raced, other = (parse_order(order_bytes(make_order())) for _ in range(2))
    writer = store.connect()
    writer.run("START TRANSACTION")
    for table, data in copy_rows([(raced, content_sha256(raced.canonical_json))]).items():
        writer.run(COPY_STATEMENTS[table], stream=[data])
    with ThreadPoolExecutor(1) as pool:
        outcomes = pool.submit(store.store_orders, [raced, other])
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'orders'"
        watcher, deadline = store.connect(), time.monotonic() + 10
        while watcher.run(waiting)[0][0] == 0 and time.monotonic() < deadline:  # within its 1 s lock_timeout
            time.sleep(0.01)
        watcher.close()
        writer.run("COMMIT")
        assert outcomes.result(timeout=10) == [StoreOutcome.DUPLICATE, StoreOutcome.STORED]
    writer.close()
    for order in (raced, other):
        assert store.get_order_json(order.order_uid) == order.canonical_json


def test_a_batch_finds_its_stored_orders_by_key_in_a_table_not_analysed_since_it_grew(
    empty_database: PostgresSettings, make_order: Any
) -> None:
    """GIVEN a database whose orders table grew to 20,000 orders with no ANALYZE since (a bulk load, or a table
    growing faster than autovacuum looks at it: the planner then reads it as small) WHEN a batch of 1,000 that
    holds one of them is stored THEN its look for the orders stored before probes the primary key rather than
    reading the whole table, whose cost would grow with every order ever stored."""
    db = OrderStore(empty_database).connect()
    db.run("ALTER TABLE orders SET (autovacuum_enabled = off)")
    grown = [parse_order(order_bytes(make_order())) for _ in range(20_000)]
    db.run(
        COPY_STATEMENTS["orders"], stream=[copy_rows([(o, content_sha256(o.canonical_json)) for o in grown])["orders"]]
    )
    counts = "SELECT seq_scan, n_tup_ins FROM pg_stat_user_tables WHERE relname = 'orders'"
    db.run("SELECT pg_stat_force_next_flush()")  # the load's counts are shared before the next answer
    db.close()
    db = OrderStore(empty_database).connect()
    before = db.run(counts)[0]

    store = OrderStore(empty_database)
    # A stored order in the middle: the batch is refused once, then written after a look for its stored orders.
    batch = [parse_order(order_bytes(make_order())) for _ in range(999)]
    batch.insert(500, grown[123])
    expected = [StoreOutcome.STORED] * 1_000
    expected[500] = StoreOutcome.DUPLICATE
    assert store.store_orders(batch) == expected
    store.close()  # a backend that ends reports its counts
    deadline = time.monotonic() + 10
    # The refused try's rows count as inserted too (and are dead): at least the 999 stored.
    while (after := db.run(counts)[0])[1] < before[1] + 999 and time.monotonic() < deadline:
        time.sleep(0.05)
    stored = db.run("SELECT count(*) FROM orders")[0][0]
    db.close()
    assert stored == 20_999
    assert after[0] == before[0], "the orders table was read through to find the batch's stored orders"
