"""Hostile records: each class of content that once failed a batch or slipped through, with the reason it
must be dead-lettered for. Each builder takes a valid order (a dict) and returns the raw Kafka value."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def with_value(order: dict[str, Any], field: str, raw_value: str) -> bytes:
    """The order with the JSON text of ``field`` replaced by ``raw_value``, written as is."""
    return json.dumps({**order, field: "@@"}).replace('"@@"', raw_value).encode()


def duplicate_first(order: dict[str, Any], raw_key: str = '"order_uid"') -> bytes:
    """The order with a second, earlier ``order_uid``: a parser keeping the last one would never notice."""
    return b"{" + raw_key.encode() + b': "smuggled", ' + json.dumps(order).encode()[1:]


HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "5,000-digit integer": (lambda o: with_value(o, "sm_id", "9" * 5000), "invalid"),
    "float overflow": (lambda o: with_value(o, "sm_id", "1e999"), "invalid"),
    "NaN": (lambda o: with_value(o, "sm_id", "NaN"), "invalid"),
    "Infinity": (lambda o: with_value(o, "sm_id", "-Infinity"), "invalid"),
    "lone surrogate": (lambda o: with_value(o, "order_uid", '"\\ud800"'), "invalid"),
    "characters SQS refuses": (lambda o: with_value(o, "order_uid", '"\\u0000\\u0008\\uffff\\ufffe"'), "invalid"),
    "duplicate key": (duplicate_first, "invalid"),
    "duplicate nested key": (
        lambda o: json.dumps(o).replace('"payment": {', '"payment": {"amount": 1, ', 1).encode(),
        "invalid",
    ),
    "duplicate key spelt with an escape": (lambda o: duplicate_first(o, '"order\\u005fuid"'), "invalid"),
    "trailing newline in uid": (lambda o: with_value(o, "order_uid", '"abc\\n"'), "invalid"),
    "1 MB value": (lambda o: with_value(o, "entry", json.dumps("x" * 1_000_000)), "invalid"),
    # About 1 MB each, every key or item an error the model would list: bounded to a few, early.
    "100,000 unknown keys": (lambda o: json.dumps({**o, **{f"k{i}": 0 for i in range(100_000)}}).encode(), "invalid"),
    "300,000 empty items": (lambda o: json.dumps({**o, "items": [{}] * 300_000}).encode(), "invalid"),
    "10k-deep nesting": (lambda o: b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "not_json"),
    "invalid UTF-8": (lambda o: json.dumps(o).encode().replace(b"Kiryat", b"\xff\xfe"), "not_utf8"),
    "control characters in a JSON string": (lambda o: b'"' + b"\\u0001\\u001f" * 10 + b'"', "not_object"),
}
