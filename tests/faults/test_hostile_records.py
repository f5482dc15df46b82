"""Hostile records through ingest_order, against real PostgreSQL and the moto SQS server: each becomes a dead
letter SQS accepts, with a reason, and never holds up the valid order behind it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from typing import Any

import flask.testing
import functions_framework
import pg8000.native

from devstack.stack import drain
from orders_core.config import Settings
from tests.support.events import kafka_event, order_bytes
from tests.support.hostile import HOSTILE


def test_every_hostile_record_is_dead_lettered_and_every_order_behind_one_stored(
    client: flask.testing.FlaskClient, admin: pg8000.native.Connection, make_order: Any, settings: Settings
) -> None:
    drain(settings)
    hostile = [build(make_order()) for build, _ in HOSTILE.values()]
    valid = [make_order() for _ in HOSTILE]
    values = [value for pair in zip(hostile, map(order_bytes, valid), strict=True) for value in pair]
    response = client.post("/", json=kafka_event(values, first_offset=1000))
    assert response.status_code == 200, response.json
    assert response.json["batchItemFailures"] == []
    assert (response.json["stored"], response.json["dead_lettered"]) == (len(valid), len(hostile))

    letters = sorted(drain(settings), key=lambda letter: letter["offset"])
    expected = [(1000 + 2 * i, reason) for i, (_, reason) in enumerate(HOSTILE.values())]
    assert [(letter["offset"], letter["reason"]) for letter in letters] == expected
    for letter, value in zip(letters, hostile, strict=True):
        assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
        assert value.startswith(base64.b64decode(letter["value"]))  # the raw bytes, cut only when too large
    uids = [order["order_uid"] for order in valid]
    assert admin.run("SELECT count(*) FROM orders WHERE order_uid = ANY(CAST(:u AS text[]))", u=uids) == [[len(uids)]]


def ingest_at_once(app: Any, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each order on its own partition, ingested by its own thread, all let go at the same moment."""
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(len(orders))

    def ingest(order: dict[str, Any], partition: int) -> None:
        client = app.test_client()
        event = kafka_event([order_bytes(order)], partition=partition)
        start.wait()
        answers.append(client.post("/", json=event).json)

    threads = [threading.Thread(target=ingest, args=(order, p)) for p, order in enumerate(orders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_two_orders_with_one_uid_at_once_store_one_and_dead_letter_the_other_as_a_conflict(
    admin: pg8000.native.Connection, make_order: Any, settings: Settings
) -> None:
    """GIVEN two different orders with the same uid on two partitions WHEN two invocations ingest them at the
    same moment (two threads) THEN exactly one is stored and the other is a conflict dead letter."""
    drain(settings)
    app = functions_framework.create_app(target="http_entry", source="functions/ingest_order/main.py")
    for _ in range(5):
        first = make_order()
        answers = ingest_at_once(app, [first, {**first, "entry": "OTHER"}])
        assert sorted((a["stored"], a["dead_lettered"], len(a["batchItemFailures"])) for a in answers) == [
            (0, 1, 0), (1, 0, 0),
        ]  # fmt: skip
        [letter] = drain(settings)
        assert (letter["reason"], letter["order_uid"]) == ("conflict", first["order_uid"])
        [[entry]] = admin.run("SELECT entry FROM orders WHERE order_uid = :uid", uid=first["order_uid"])
        assert letter["partition"] == (1 if entry == first["entry"] else 0)  # the one not stored


def test_an_event_over_the_platforms_payload_cap_is_refused_unread_and_the_next_one_stored(
    client: flask.testing.FlaskClient, admin: pg8000.native.Connection, make_order: Any, settings: Settings
) -> None:
    """What cost 540 MB at 1.2 MB (2.7 GB at the cap): an event over the cap is a 413 before it is read, whether
    it says its length or not, and leaves nothing behind; the next event is taken as ever."""
    drain(settings)
    order = make_order()
    # GIVEN events past INGEST_MAX_BODY_BYTES (the platform's own cap), one saying its length, one chunked
    oversized = json.dumps(kafka_event([order_bytes(order)] * (settings.ingest_max_body_bytes // 1000))).encode()
    assert len(oversized) > settings.ingest_max_body_bytes
    for environ in ({}, {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}):
        stream = io.BytesIO(oversized)
        response = client.post("/", input_stream=stream, content_type="application/json", environ_overrides=environ)
        # THEN each is refused, no further read than the cap, and nothing is stored or dead-lettered
        assert response.status_code == 413, response.json
        assert stream.tell() <= settings.ingest_max_body_bytes + 64 * 1024
    assert drain(settings) == []
    assert admin.run("SELECT count(*) FROM orders WHERE order_uid = :uid", uid=order["order_uid"]) == [[0]]
    # and the same order in an event within the cap is stored
    assert client.post("/", json=kafka_event([order_bytes(order)])).json["stored"] == 1
