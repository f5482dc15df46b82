"""Logging shared by the functions and the trigger: one JSON object a line (``LOG_FORMAT=json``, Powertools
Logger's formatter, for CloudWatch Logs Insights and any log search) or plain lines (``LOG_FORMAT=text``).

Code that logs passes its fields with ``extra={...}``; both formats show them as keys. Inside
:func:`invocation`, every line also carries the ``function`` and the ``request_id`` of that invocation.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from orders_core.domain.ports import KafkaRecord

# The header that carries a request id from the trigger (functions-framework's name for it) to a function.
REQUEST_ID_HEADER = "Function-Execution-Id"
# What a caller may name its request: anything else (too long, spaces, control characters) gets a fresh id,
# so a header can neither forge log lines nor bloat every line of the invocation.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_invocation: ContextVar[dict[str, str]] = ContextVar("invocation", default={})  # noqa: B039 (never mutated)
# A record's own attributes: everything else on it came from ``extra`` or the invocation.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_PLAIN = re.compile(r"[\w.@:/+-]+")


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is a sensible one, else a fresh one."""
    return value if value and _REQUEST_ID.fullmatch(value) else uuid.uuid4().hex


@contextmanager
def invocation(function: str, request_id: str) -> Iterator[None]:
    """Within this block (this thread or task only), every log line names the function and the request."""
    token = _invocation.set({"function": function, "request_id": request_id})
    try:
        yield
    finally:
        _invocation.reset(token)


def record_spans(records: Iterable[KafkaRecord]) -> list[str]:
    """The records by partition, as ``orders-0@15..24`` (one offset: ``orders-0@15``): short at any size."""
    # Each record's offset filed under its partition, the names written once a partition: this runs for every
    # record of every batch ingested (a name written per record, and its span kept in Python, took 0.9 µs).
    offsets: defaultdict[tuple[str, int], list[int]] = defaultdict(list)
    for record in records:
        offsets[record.topic, record.partition].append(record.offset)
    spans = sorted((f"{topic}-{partition}", min(each), max(each)) for (topic, partition), each in offsets.items())
    return [f"{name}@{low}" if low == high else f"{name}@{low}..{high}" for name, low, high in spans]


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (as logging's own last-resort handler
    does), so a replaced stderr (a test capturing it) still gets the lines."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _InvocationFields(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _invocation.get().items():
            record.__dict__.setdefault(name, value)
        return True


class TextFormatter(logging.Formatter):
    """A plain line for people, its fields appended as ``key=value``: a value in JSON unless it is a plain
    word, and the message with its line breaks and control characters escaped, so nothing a caller sent (a
    topic, a path, a response body) can start a line of its own. A traceback keeps its lines, each indented
    under a ``|``: never mistaken for a line of its own either."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(stack_info)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{name}={_plain(value)}" for name, value in record.__dict__.items() if name not in _RECORD_ATTRIBUTES
        ]
        if not fields:
            return line
        head, newline, trace = line.partition("\n")  # the fields end the first line, before any traceback
        return " ".join([head, *fields]) + newline + trace


# Every character a terminal, a log shipper or ``str.splitlines`` may take for the end of a line, and the
# other control characters (an escape sequence can rewrite what a terminal shows).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def escape_line(text: str) -> str:
    """``text`` on one line: backslashes, line breaks and control characters written as escapes."""
    if not _UNSAFE.search(text):
        return text  # the common case: one scan, no copy
    return _UNSAFE.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
    return named or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def _indented(text: str) -> str:
    return "\n".join("  | " + escape_line(line) for line in text.split("\n"))


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return value if _PLAIN.fullmatch(value) else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


def json_formatter(**options: Any) -> LambdaPowertoolsFormatter:
    """Powertools' JSON lines, in ASCII: its default keeps U+2028, U+2029 and U+0085 as they are, and a log
    reader that splits lines on them would see a field start a line of its own."""
    serialize = functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=True, default=str)
    return LambdaPowertoolsFormatter(json_serializer=serialize, **options)


def handler() -> logging.Handler:
    """A handler writing to whatever stderr is, adding the invocation's fields to each line (no formatter)."""
    stderr = _Stderr()
    stderr.addFilter(_InvocationFields())
    return stderr


def configure_logging(log_format: str, log_level: str) -> None:
    """Send every logger's lines to stderr, one a line (Lambda and the process runners collect it, as stdout,
    where the Lambda handlers print their EMF metrics); ``log_format`` is ``json`` or ``text``."""
    handler = _Stderr()
    handler.setFormatter(json_formatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_InvocationFields())
    # force: the Lambda runtime installs its own handler on the root logger; without this every line is twice.
    logging.basicConfig(level=log_level, handlers=[handler], force=True)
    logging.getLogger("orders_core").setLevel(log_level)
