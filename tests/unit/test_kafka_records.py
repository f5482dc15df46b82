"""Reading a consumed message as a record: whatever it holds, a record comes out, and what could not be read is
said. The fake raises exactly as confluent-kafka does on a header name that is not UTF-8 (the faults tier
proves it against a real broker with raw bytes written by kcat)."""

from __future__ import annotations

from typing import Any

import pytest

from orders_core.adapters.kafka_records import record_of


class FakeMessage:
    """A consumed message; ``headers()`` may be called once only (a second call can crash the real one)."""

    def __init__(self, key: bytes | None, value: bytes | None, headers: Any) -> None:
        self._key, self._value, self._headers = key, value, headers
        self.header_calls = 0

    def topic(self) -> str:
        return "orders"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41

    def timestamp(self) -> tuple[int, int]:
        return 1, 1_700_000_000_000

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Any:
        self.header_calls += 1
        assert self.header_calls == 1, "headers() called twice"
        if isinstance(self._headers, BaseException):
            raise self._headers
        return self._headers


def not_utf8_name(name: bytes) -> SystemError:
    """What confluent-kafka raises: a SystemError whose cause is the decoder's error on the name's bytes."""
    try:
        try:
            name.decode("utf-8")
        except UnicodeDecodeError as cause:
            raise SystemError(
                "<method 'headers' of 'cimpl.Message' objects> returned a result with an exception set"
            ) from cause
    except SystemError as exc:
        return exc
    raise AssertionError(f"{name!r} is UTF-8")


def test_a_message_reads_as_its_record_with_a_null_header_value_as_empty() -> None:
    message = FakeMessage(b"k", b"{}", [("trace", b"\x00\xff"), ("empty", None)])
    record, unreadable = record_of(message)  # type: ignore[arg-type]
    assert unreadable is None
    assert (record.label, record.timestamp, record.key, record.value) == ("orders-2@41", 1_700_000_000_000, b"k", b"{}")
    assert record.headers == (("trace", b"\x00\xff"), ("empty", b""))


def test_no_headers_and_a_null_value_and_a_key_that_is_not_utf8_read_as_they_are() -> None:
    record, unreadable = record_of(FakeMessage(b"\xfe\xff", None, None))  # type: ignore[arg-type]
    assert (record.key, record.value, record.headers, unreadable) == (b"\xfe\xff", None, (), None)


@pytest.mark.parametrize("name", [b"\xff\xfetrace", b"\xc3(", b"ok-" + b"\xed\xa0\x80"])  # the last: a surrogate
def test_a_header_name_that_is_not_utf8_leaves_the_headers_out_and_says_which_name(name: bytes) -> None:
    """GIVEN a message whose headers the client cannot read (a name that is not UTF-8) WHEN it is read THEN the
    record keeps its key, value and coordinates, has no headers, and the reason quotes the name, escaped."""
    message = FakeMessage(b"\xfe", b'{"order_uid": "a"}', not_utf8_name(name))
    record, unreadable = record_of(message)  # type: ignore[arg-type]
    assert (record.label, record.key, record.value, record.headers) == (
        "orders-2@41",
        b"\xfe",
        b'{"order_uid": "a"}',
        (),
    )
    assert unreadable is not None and f"the header name {name!r} is not UTF-8" in unreadable
    assert message.header_calls == 1


def test_a_huge_header_name_is_quoted_only_in_part() -> None:
    record, unreadable = record_of(FakeMessage(None, b"{}", not_utf8_name(b"\xff" * 100_000)))  # type: ignore[arg-type]
    assert record.headers == () and unreadable is not None and len(unreadable) < 400


def test_whatever_else_the_client_raises_on_headers_is_said_too() -> None:
    _, unreadable = record_of(FakeMessage(None, b"{}", MemoryError("headers")))  # type: ignore[arg-type]
    assert unreadable is not None and "MemoryError: headers" in unreadable
