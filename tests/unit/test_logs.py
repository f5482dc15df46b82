"""The log line's helpers: record coordinates that stay short, plain lines that cannot be forged."""

from __future__ import annotations

import json
import logging
import sys

from orders_core.domain.ports import KafkaRecord
from orders_core.http.logs import TextFormatter, json_formatter, record_spans


def record(partition: int, offset: int, topic: str = "orders") -> KafkaRecord:
    return KafkaRecord(topic=topic, partition=partition, offset=offset, timestamp=0, key=None, value=b"")


def test_records_are_named_by_partition_and_offset_range_at_any_batch_size() -> None:
    records = [record(1, 7), *(record(0, offset) for offset in range(15, 10_015)), record(1, 9)]
    assert record_spans(records) == ["orders-0@15..10014", "orders-1@7..9"]
    assert record_spans([record(2, 3)]) == ["orders-2@3"]
    assert record_spans([]) == []


def test_a_text_line_keeps_a_hostile_field_on_its_own_line() -> None:
    line = logging.makeLogRecord(
        {
            "name": "get_order",
            "levelname": "INFO",
            "msg": "lookup answered",
            "path": "/x\n2026 ERROR forged",
            "status": 404,
            "batch": ["orders-0@1"],
            "request_id": "req-1",
        }
    )
    text = TextFormatter().format(line)
    assert "\n" not in text
    assert text.endswith(
        'get_order: lookup answered path="/x\\n2026 ERROR forged" status=404 batch=["orders-0@1"] request_id=req-1'
    )


HOSTILE = "orders\n2026-12-04 15:00:00,000 ERROR forged: \r\x1b[2Jcleared\u2028next\x85last"
# How it reads escaped: in the message (a text line's own escapes), and in a field (JSON's).
IN_MESSAGE = "orders\\n2026-12-04 15:00:00,000 ERROR forged: \\r\\x1b[2Jcleared\\u2028next\\x85last"
IN_FIELD = "orders\\n2026-12-04 15:00:00,000 ERROR forged: \\r\\u001b[2Jcleared\\u2028next\\u0085last"


def hostile_line(**fields: object) -> logging.LogRecord:
    return logging.makeLogRecord(
        {
            "name": "orders_local.trigger",
            "levelname": "INFO",
            "msg": "consuming %s -> %s",
            "args": (HOSTILE, HOSTILE),
            "topic": HOSTILE,
            **fields,
        }
    )


def test_a_text_line_escapes_a_hostile_message_argument() -> None:
    # GIVEN a topic (or a response body) with line breaks and escape sequences, logged as a message argument
    text = TextFormatter().format(hostile_line())
    # THEN the line stays one line, with nothing a terminal or a log reader takes for a break or a command
    assert text.splitlines() == [text]
    assert "\x1b" not in text and "\x85" not in text
    assert f"consuming {IN_MESSAGE} ->" in text
    assert text.endswith(f'topic="{IN_FIELD}"')


def test_a_text_traceback_keeps_its_lines_each_marked_as_part_of_the_line_above() -> None:
    try:
        raise ValueError(HOSTILE)
    except ValueError:
        line = hostile_line(exc_info=sys.exc_info())
    text = TextFormatter().format(line)
    first, *trace = text.split("\n")
    assert first.endswith(f' topic="{IN_FIELD}"')
    assert trace and all(continued.startswith("  | ") for continued in trace)
    assert trace[-2:] == ["  | ValueError: orders", "  | " + IN_MESSAGE.removeprefix("orders\\n")]
    assert "\x1b" not in text and "\u2028" not in text


def test_a_json_line_holds_a_hostile_message_and_field_on_one_line() -> None:
    text = json_formatter().format(hostile_line())
    assert text.splitlines() == [text]
    document = json.loads(text)
    assert document["message"] == f"consuming {HOSTILE} -> {HOSTILE}"
    assert document["topic"] == HOSTILE
