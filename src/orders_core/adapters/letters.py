"""The dead letter's wire format, one for every destination (SQS, a Kafka topic): ASCII JSON, bounded.

Both destinations carry the same body, so a reader, ``orders-dlq`` and the tests read letters alike wherever
they were sent. Kafka would take more (1 MB by default), but the bounds are SQS's, so a letter moves between
the two unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from orders_core.domain.ports import DeadLetter

# SQS's documented limits (SendMessage, SendMessageBatch): a message, and the sum of a batch's messages, of
# at most 256 KiB (262,144 bytes; AWS now takes up to 1 MiB, but 256 KiB is taken everywhere), 10 a batch,
# only the characters #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF (others: InvalidMessageContents).
# A letter must always be accepted, or the records behind it would wait forever. So the body is ASCII JSON
# (every other character escaped), every string in it is bounded, and the raw value, the key and the error list
# are cut to fit; the record stays in Kafka (topic, partition, offset) for anyone who needs the rest.
MAX_LETTER_BYTES = 256 * 1024
MAX_VALUE_BYTES = 160 * 1024  # base64: 218,456 bytes
MAX_KEY_BYTES = 1024
MAX_ERRORS = 50
MAX_ERRORS_BYTES = 16 * 1024
# Characters of each text (up to 12 bytes each once escaped): with the value, key and errors, under 250 KiB.
MAX_TEXT = 1000  # the message, an error's field or message
MAX_NAME = 128  # the reason, the order_uid
MAX_TOPIC = 256  # Kafka's own limit is 249
# The record's headers are kept whole, names and values unchanged, as long as they fit in this many bytes of the
# body: a redrive then produces the record exactly as it was written. Those that do not fit are left out and the
# letter says so (``headers_truncated``); ``orders-dlq`` then reads the record back from Kafka.
MAX_HEADERS_BYTES = 6 * 1024


def _text(value: str | None, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else value[:limit]


def _bounded_errors(errors: list[dict[str, str]]) -> list[dict[str, str]]:
    kept: list[dict[str, str]] = []
    size = 0
    for error in errors[:MAX_ERRORS]:
        bounded = {str(name)[:MAX_TEXT]: str(text)[:MAX_TEXT] for name, text in list(error.items())[:2]}
        size += len(json.dumps(bounded)) + 2
        if size > MAX_ERRORS_BYTES:
            break
        kept.append(bounded)
    return kept


def _bounded_headers(headers: tuple[tuple[str, bytes], ...]) -> tuple[list[list[str]], bool]:
    """The headers that fit MAX_HEADERS_BYTES, each whole (``[name, base64 value]``), and whether any was left."""
    kept: list[list[str]] = []
    size = 2
    for name, value in headers:
        pair = [name, base64.b64encode(value or b"").decode()]
        size += len(json.dumps(pair)) + 2
        if size > MAX_HEADERS_BYTES:
            return kept, True
        kept.append(pair)
    return kept, False


def encode_letter(letter: DeadLetter) -> str:
    """The letter's body: ASCII JSON, under MAX_LETTER_BYTES, with the raw key and value in base64."""
    value = letter.value or b""
    body: dict[str, Any] = {
        "reason": _text(letter.reason, MAX_NAME),
        "message": _text(letter.message),
        "topic": _text(letter.topic, MAX_TOPIC),
        "partition": letter.partition,
        "offset": letter.offset,
        "key": None if letter.key is None else base64.b64encode(letter.key[:MAX_KEY_BYTES]).decode(),
        "key_truncated": letter.key is not None and len(letter.key) > MAX_KEY_BYTES,
        "value": None if letter.value is None else base64.b64encode(value[:MAX_VALUE_BYTES]).decode(),
        "value_bytes": len(value),
        "value_sha256": hashlib.sha256(value).hexdigest(),
        "value_truncated": len(value) > MAX_VALUE_BYTES,
        "errors": _bounded_errors(letter.errors),
        "error_count": len(letter.errors),
        "order_uid": _text(letter.order_uid, MAX_NAME),
        "request_id": _text(letter.request_id, MAX_NAME),
    }
    body["headers"], body["headers_truncated"] = _bounded_headers(letter.headers)
    text = json.dumps(body)  # ensure_ascii: lone surrogates, U+FFFE and the like travel as \u escapes
    return text if len(text) <= MAX_LETTER_BYTES else minimal_letter(letter)


def minimal_letter(letter: DeadLetter) -> str:
    """What is always accepted: where the record is, its value's hash, and why it was refused."""
    value = letter.value or b""
    return json.dumps(
        {
            "reason": _text(letter.reason, MAX_NAME),
            "topic": _text(letter.topic, MAX_TOPIC),
            "partition": letter.partition,
            "offset": letter.offset,
            "value_bytes": len(value),
            "value_sha256": hashlib.sha256(value).hexdigest(),
            "request_id": _text(letter.request_id, MAX_NAME),
            "minimal": True,
        }
    )


def decode_letter(text: str | bytes) -> dict[str, Any]:
    """A letter's fields; ``{}`` for a body that is not a letter (a reader shows it, never fails on it)."""
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _unb64(text: Any) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def letter_key(body: dict[str, Any]) -> bytes | None:
    return _unb64(body.get("key"))


def letter_value(body: dict[str, Any]) -> bytes | None:
    return _unb64(body.get("value"))


def letter_headers(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The record's headers as the letter kept them."""
    pairs = body.get("headers") or []
    return [
        (name, _unb64(value) or b"")
        for name, value in (p for p in pairs if isinstance(p, list) and len(p) == 2)
        if isinstance(name, str)
    ]


def letter_is_whole(body: dict[str, Any]) -> bool:
    """Whether the letter holds its record whole (key, value, every header): else Kafka has the rest."""
    value = letter_value(body)
    key_ok = not body.get("key_truncated")
    value_ok = (body.get("value") is None and body.get("value_bytes") == 0) or (
        value is not None and len(value) == body.get("value_bytes") and not body.get("value_truncated")
    )
    return bool(
        key_ok
        and value_ok
        and not body.get("headers_truncated")
        and not body.get("minimal")
        and isinstance(body.get("headers"), list)
    )
