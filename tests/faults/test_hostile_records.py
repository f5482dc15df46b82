"""Hostile records through ingest_order, against real PostgreSQL and the moto SQS server: each becomes a dead
letter SQS accepts, with a reason, and never holds up the valid order behind it. And hostile records on the
topic itself, written by a client that puts raw bytes where ours cannot, through the trigger."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask.testing
import functions_framework
import pg8000.native
import pytest
from confluent_kafka import Producer

from devstack import services
from devstack.stack import drain
from orders_core.config import Settings
from orders_local.provision import ensure_topic
from tests.support.events import kafka_event, order_bytes
from tests.support.hostile import HOSTILE


def test_every_hostile_record_is_dead_lettered_and_every_order_behind_one_stored(
    client: flask.testing.FlaskClient,
    admin: pg8000.native.Connection,
    make_order: Any,
    dead_letter_settings: Settings,
) -> None:
    settings = dead_letter_settings
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
    admin: pg8000.native.Connection, make_order: Any, dead_letter_settings: Settings
) -> None:
    """GIVEN two different orders with the same uid on two partitions WHEN two invocations ingest them at the
    same moment (two threads) THEN exactly one is stored and the other is a conflict dead letter."""
    settings = dead_letter_settings
    drain(settings)
    app = functions_framework.create_app(target="http_entry", source="functions/ingest_order/main.py")
    for _ in range(5):
        first = make_order()
        answers = ingest_at_once(app, [first, {**first, "entry": "OTHER"}])
        assert sorted((a["stored"], a["dead_lettered"], len(a["batchItemFailures"])) for a in answers) == [
            (0, 1, 0),
            (1, 0, 0),
        ]
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


@pytest.fixture(scope="module")
def ingest_url(stack_env: dict[str, str], work_dir: Path) -> Iterator[str]:
    service = services.function("ingest_order", stack_env, work_dir).start()
    yield f"http://127.0.0.1:{service.port}/"
    service.stop()


def kcat(bootstrap: str, topic: str, partition: int, key: bytes, value: bytes | None, headers: list[bytes]) -> None:
    """Produce one record with kcat, which writes header names as raw bytes (confluent-kafka wants ``str``).
    An empty value after the key delimiter is sent as a null value (``-Z``)."""
    argv = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-p", str(partition), "-K", "\t", "-Z", "-X", "acks=all"]
    for header in headers:
        argv += ["-H", header]  # name=value, as bytes
    line = key + b"\t" + (value or b"") + b"\n"
    assert b"\n" not in key + (value or b"") and b"\t" not in key
    subprocess.run(argv, input=line, check=True, timeout=30)


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        samples = dict(line.rsplit(" ", 1) for line in answer.read().decode().splitlines() if line[:1] != "#")
    return float(samples[name])


def test_records_with_header_names_and_keys_that_are_not_utf8_never_stop_the_trigger(
    stack_env: dict[str, str],
    kafka_bootstrap: str,
    ingest_url: str,
    work_dir: Path,
    settings: Settings,
    admin: pg8000.native.Connection,
    make_order: Any,
) -> None:
    """GIVEN, at the head of partition 0, a valid order whose header names include one that is not UTF-8 (the
    Kafka client raises on reading it), and a record with a null value, a key that is not UTF-8 and such a
    header WHEN the trigger consumes the topic THEN the order is stored (without its headers), the null record
    is dead-lettered with its reason and its key; a junk record whose header name SQS would refuse is dead-lettered
    with that name; the orders after them on every partition are stored, and the trigger is still running,
    counting the two unreadable records."""
    drain(settings)
    topic = f"hostile-{uuid.uuid4().hex[:8]}"
    ensure_topic(Settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_topic=topic, kafka_topic_partitions=3))
    first = make_order()
    kcat(kafka_bootstrap, topic, 0, b"k1", order_bytes(first), [b"\xff\xfetrace=1", b"source=kcat"])
    kcat(kafka_bootstrap, topic, 0, b"\xfe\xff", None, [b"\xc3(=2"])
    kcat(kafka_bootstrap, topic, 1, b"k3", b"junk", ["\uffff\x01name=v".encode()])  # UTF-8 that SQS refuses
    behind = [make_order() for _ in range(9)]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for index, order in enumerate(behind):
        producer.produce(topic, value=json.dumps(order).encode(), partition=index % 3, headers=[("source", b"test")])
    assert producer.flush(30) == 0
    env = {
        **stack_env,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"trigger-{topic}",
        "INGEST_URL": ingest_url,
        "TRIGGER_BATCH_WINDOW_S": "0.05",
        "TRIGGER_RETRY_MAX_S": "1",
        "LOG_LEVEL": "INFO",
    }
    trigger = services.trigger(env, work_dir, f"trigger-{topic}").start()
    try:
        uids = [order["order_uid"] for order in [first, *behind]]

        def stored() -> int:
            return int(admin.run("SELECT count(*) FROM orders WHERE order_uid = ANY(CAST(:u AS text[]))", u=uids)[0][0])

        services.wait_until(lambda: stored() == len(uids), 60, "every order stored", 0.2)
        letters: list[dict[str, Any]] = []

        def lettered() -> bool:
            letters.extend(letter for letter in drain(settings) if letter["topic"] == topic)
            return len(letters) >= 2

        services.wait_until(lettered, 30, "both letters")
        places = {(letter["partition"], letter["offset"]): letter for letter in letters}
        assert sorted(places) == [(0, 1), (1, 0)] and {letter["reason"] for letter in letters} == {"not_json"}
        null_value, junk = places[(0, 1)], places[(1, 0)]
        assert base64.b64decode(null_value["key"]) == b"\xfe\xff" and null_value["value"] is None
        assert null_value["headers"] == []  # unreadable: read without them
        assert junk["headers"] == [["\uffff\x01name", base64.b64encode(b"v").decode()]]
        assert trigger.running
        assert metric(trigger.port, "orders_trigger_records_unreadable_total") == 2
        said = [json.loads(line) for line in trigger.log_tail(500).splitlines() if line.startswith("{")]
        unreadable = {line["record"]: line["unreadable"] for line in said if "unreadable" in line}
        assert "the header name b'\\xff\\xfetrace' is not UTF-8" in unreadable[f"{topic}-0@0"]
        assert "the header name b'\\xc3(' is not UTF-8" in unreadable[f"{topic}-0@1"]
    finally:
        trigger.stop()
