"""The Lambda Kafka event: decoded as the platform sends it, built by the trigger the same way."""

from __future__ import annotations

import pytest

from orders_core.kafka_event import BadEvent, KafkaRecord, build_event, decode_event
from tests.support.events import FIXTURE, kafka_event


def test_platform_event_decodes_key_value_and_headers() -> None:
    [record] = decode_event(
        {**FIXTURE, "records": {"orders-0": [dict(FIXTURE["records"]["orders-0"][0], value="e30=")]}}
    )
    assert (record.topic, record.partition, record.offset) == ("orders", 0, 15)
    assert record.key == b"b563feb7b2b84b6test"
    assert record.value == b"{}"
    assert record.headers == (("source", b"gen"),)
    assert record.item_identifier == "orders-0@15"


def test_built_event_decodes_to_the_same_records() -> None:
    records = [
        KafkaRecord("orders", p, o, 1, key, value, (("h", b"\x00\xff"),))
        for p, o, key, value in [(0, 1, b"k", b"\xff\xfe"), (2, 7, None, b"{}"), (2, 8, b"", None)]
    ]
    assert decode_event(build_event(records, "127.0.0.1:9092")) == records


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {"records": []},
        {"records": {"orders-0": {}}},
        {"records": {"orders-0": [{"topic": "orders"}]}},
    ],
)
def test_malformed_envelopes_are_refused(event: object) -> None:
    with pytest.raises(BadEvent):
        decode_event(event)


def test_value_that_is_not_base64_is_refused() -> None:
    event = kafka_event([b"{}"])
    event["records"]["orders-0"][0]["value"] = "not base64!"
    with pytest.raises(BadEvent, match="base64"):
        decode_event(event)
