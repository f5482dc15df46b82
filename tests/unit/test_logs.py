"""The log line's helpers: record coordinates that stay short, plain lines that cannot be forged."""

from __future__ import annotations

import logging

from orders_core.domain.ports import KafkaRecord
from orders_core.http.logs import TextFormatter, record_spans


def record(partition: int, offset: int, topic: str = "orders") -> KafkaRecord:
    return KafkaRecord(topic=topic, partition=partition, offset=offset, timestamp=0, key=None, value=b"")


def test_records_are_named_by_partition_and_offset_range_at_any_batch_size() -> None:
    records = [record(1, 7), *(record(0, offset) for offset in range(15, 10_015)), record(1, 9)]
    assert record_spans(records) == ["orders-0@15..10014", "orders-1@7..9"]
    assert record_spans([record(2, 3)]) == ["orders-2@3"]
    assert record_spans([]) == []


def test_a_text_line_keeps_a_hostile_field_on_its_own_line() -> None:
    line = logging.makeLogRecord(
        {"name": "get_order", "levelname": "INFO", "msg": "lookup answered", "path": "/x\n2026 ERROR forged",
         "status": 404, "batch": ["orders-0@1"], "request_id": "req-1"}
    )  # fmt: skip
    text = TextFormatter().format(line)
    assert "\n" not in text
    assert text.endswith('get_order: lookup answered path="/x\\n2026 ERROR forged" status=404 batch=["orders-0@1"] '
                         "request_id=req-1")  # fmt: skip
