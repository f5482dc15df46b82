"""The Lambda Kafka event and its partial batch response, both ways, against AWS's shapes as Powertools for
AWS Lambda models them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orders_core.adapters.kafka_event import (
    BadEvent,
    BadResponse,
    build_event,
    decode_event,
    encode_events,
    failed_offsets,
)
from orders_core.domain.ingest import IngestReport
from orders_core.domain.ports import KafkaRecord
from tests.support.events import FIXTURE, aws_event, aws_partial_response, kafka_event

RECORDS = [
    KafkaRecord("orders", p, o, 1_700_000_000_000, key, value, (("h", b"\x00\xff"),))
    for p, o, key, value in [(0, 1, b"k", b"\xff\xfe"), (2, 7, None, b"{}"), (2, 8, b"", b"")]
]


def test_platform_event_decodes_key_value_and_headers() -> None:
    [record] = decode_event(
        {**FIXTURE, "records": {"orders-0": [dict(FIXTURE["records"]["orders-0"][0], value="e30=")]}}
    )
    assert (record.topic, record.partition, record.offset) == ("orders", 0, 15)
    assert record.key == b"b563feb7b2b84b6test"
    assert record.value == b"{}"
    assert record.headers == (("source", b"gen"),)
    assert record.item_identifier == {"partition": "orders-0", "offset": 15}
    assert record.label == "orders-0@15"


def test_built_event_decodes_to_the_same_records() -> None:
    assert decode_event(build_event(RECORDS, "127.0.0.1:9092")) == RECORDS


def test_built_event_is_what_aws_sends() -> None:
    # Powertools' model reads values as UTF-8 text, so the values here are text (ours are bytes).
    records = [KafkaRecord(r.topic, r.partition, r.offset, r.timestamp, r.key, b"{}", r.headers) for r in RECORDS]
    event = build_event(records, "127.0.0.1:9092,127.0.0.1:9093")
    parsed: Any = aws_event(event)
    assert parsed.bootstrapServers == ["127.0.0.1:9092", "127.0.0.1:9093"]
    assert list(parsed.records) == ["orders-0", "orders-2"]
    first = parsed.records["orders-0"][0]
    assert (first.partition, first.offset, first.key, first.headers) == (0, 1, b"k", [{"h": b"\x00\xff"}])


def test_the_fixture_and_an_msk_event_are_aws_shapes_and_decode() -> None:
    aws_event(FIXTURE)
    msk = {**FIXTURE, "eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/c/1"}
    aws_event(msk)
    assert [r.offset for r in decode_event(msk)] == [15]


def test_java_signed_header_bytes_decode_as_unsigned() -> None:
    event = kafka_event([b"{}"])
    event["records"]["orders-0"][0]["headers"] = [{"trace": [-1, -128, 127, 0]}]
    assert decode_event(event)[0].headers == (("trace", b"\xff\x80\x7f\x00"),)


def test_ingest_failures_are_what_aws_expects() -> None:
    """GIVEN records of two partitions WHEN some fail THEN the ingest names them exactly as Powertools'
    batch processor does for the platform."""
    event = build_event(RECORDS, "127.0.0.1:9092")
    failed = [RECORDS[0], RECORDS[2]]
    report = IngestReport(stored=3, dead_lettered=1, failed=failed, failure="store down")
    assert set(report.batch_response()) == {"batchItemFailures"}  # what AWS documents, alone
    ours = report.batch_response()["batchItemFailures"]
    assert ours == aws_partial_response(event, {(r.partition, r.offset) for r in failed})
    assert report.as_dict()["batchItemFailures"] == ours  # the local entry's answer adds only the counts
    assert ours == [
        {"itemIdentifier": {"partition": "orders-0", "offset": 1}},
        {"itemIdentifier": {"partition": "orders-2", "offset": 8}},
    ]


def test_the_trigger_reads_the_response_aws_defines_alone_or_with_the_local_entrys_counts() -> None:
    event = build_event(RECORDS, "127.0.0.1:9092")
    answer = {"batchItemFailures": aws_partial_response(event, {(2, 8)})}
    assert failed_offsets(answer, RECORDS) == {("orders-2", 8)}
    assert failed_offsets({"batchItemFailures": [], "stored": 3}, RECORDS) == set()


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        {},
        "ok",
        {"batchItemFailures": None},
        {"batchItemFailures": {}},
        {"batchItemFailures": ["orders-0@1"]},
        {"batchItemFailures": [{"itemIdentifier": "orders-0@1"}]},  # the string form is Kinesis's, not Kafka's
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": "1"}}]},
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": True}}]},
        {"batchItemFailures": [{"itemIdentifier": {"partition": ["orders-0"], "offset": 1}}]},
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 2}}]},  # not in the batch
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-1", "offset": 1}}]},  # not in the batch
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-2", "offset": 8}}, {}]},
    ],
)
def test_an_answer_that_is_not_a_response_for_the_batch_is_refused(answer: object) -> None:
    with pytest.raises(BadResponse):
        failed_offsets(answer, RECORDS)


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"records": []},
        {"records": {"orders-0": {}}},
        {"records": {"orders-0": [1, 2]}},
        {"records": {"orders-0": [{"topic": "orders"}]}},
    ],
)
def test_malformed_envelopes_are_refused(event: object) -> None:
    with pytest.raises(BadEvent):
        decode_event(event)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("value", 12345),  # an integer where base64 bytes belong
        ("key", ["a"]),
        ("value", "not base64!"),
        ("value", "e30"),  # unpadded
        ("value", "e30=\n"),  # a line break after the padding
        ("value", "e30-"),  # the URL-safe alphabet
        ("value", "e30=e30="),  # data after the padding
        ("key", "i4cv="),  # a lone '=' after a whole quantum (the standard library's strict mode takes it)
        ("offset", "15"),
        ("offset", 15.5),
        ("offset", True),
        ("offset", -1),
        ("partition", None),
        ("topic", 7),
        ("timestamp", "yesterday"),
        ("headers", "source"),
        ("headers", [{"source": 10**12}]),  # bytes(10**12) would allocate a terabyte
        ("headers", [{"source": [256]}]),
        ("headers", [["source", [1]]]),
    ],
)
def test_a_malformed_record_is_refused_never_coerced(field: str, value: object) -> None:
    event = kafka_event([b"{}"])
    event["records"]["orders-0"][0][field] = value
    with pytest.raises(BadEvent):
        decode_event(event)


def test_a_record_filed_under_another_partition_is_refused() -> None:
    event = kafka_event([b"{}"], partition=0)
    event["records"]["orders-1"] = event["records"].pop("orders-0")
    with pytest.raises(BadEvent, match="filed under"):
        decode_event(event)


def records_of(sizes: list[int]) -> list[KafkaRecord]:
    return [KafkaRecord("orders", 0, offset, 1, b"k", b"x" * size) for offset, size in enumerate(sizes)]


def test_events_stay_within_the_size_limit_and_keep_every_record_in_order() -> None:
    records = records_of([3000, 100, 5000, 2000, 2000, 2000, 10, 4000])
    events = list(encode_events(records, "127.0.0.1:9092", 8192))
    assert len(events) > 1
    assert [r for chunk, _ in events for r in chunk] == records
    for chunk, body in events:
        assert len(body) <= 8192
        assert json.loads(body) == build_event(chunk, "127.0.0.1:9092")
        aws_event(json.loads(body))


def test_a_batch_within_the_limit_is_one_event() -> None:
    records = records_of([100] * 50)
    [(chunk, body)] = encode_events(records, "127.0.0.1:9092", 6 * 1024 * 1024)
    assert chunk == records and json.loads(body) == build_event(records, "127.0.0.1:9092")


def test_a_record_larger_than_the_limit_still_goes_alone() -> None:
    records = records_of([100, 20_000, 100])
    events = list(encode_events(records, "127.0.0.1:9092", 8192))
    assert [list(chunk) for chunk, _ in events] == [[records[0]], [records[1]], [records[2]]]
    assert len(events[1][1]) > 8192


def test_an_encoded_event_is_the_built_event_whatever_the_records_hold() -> None:
    records = [
        KafkaRecord('odd"topic\\', 3, 7, -1, None, None),
        KafkaRecord('odd"topic\\', 3, 8, 1, b"\x00\xff", "é\n".encode(), (("h", b"\x01\xfe"), ("h", b""))),
    ]
    [(_chunk, body)] = encode_events(records, "127.0.0.1:9092", 6 * 1024 * 1024)
    assert json.loads(body) == build_event(records, "127.0.0.1:9092")
