"""The AWS Lambda Kafka event and its partial batch response, both ways: the event is decoded by the ingest
function and built by the local trigger; the response is built by the ingest function and read by the
trigger. One module, so the two sides always agree on the format.

The response is AWS's for Kafka event source mappings with ``ReportBatchItemFailures``: a failed record is
``{"itemIdentifier": {"partition": "orders-0", "offset": 15}}`` (the partition named as in the event's
``records``), and the platform retries a partition from its lowest failed offset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any

import msgspec
import pybase64

from orders_core.domain.ports import KafkaRecord


class BadEvent(ValueError):
    """The envelope is not a Kafka event: nothing in it can be processed."""


class BadResponse(ValueError):
    """The function's answer is not a partial batch response for this batch: retry the whole batch."""


# The platform sends header values as Java byte arrays, which are signed.
_Byte = Annotated[int, msgspec.Meta(ge=-128, le=255)]


class _Record(msgspec.Struct, frozen=True, gc=False):
    """One record as the platform sends it. Strict: a float offset or a number as a header is refused, never
    coerced (``bytes(10**12)`` would allocate a terabyte). Its key and value are base64, decoded by msgspec as
    it reads them: the alphabet and its padding, nothing else (as strict as the standard library's strict mode,
    and stricter on one point: a lone ``=`` after a whole quantum is refused). Other keys are ignored."""

    topic: Annotated[str, msgspec.Meta(min_length=1, max_length=249)]  # Kafka's own limit
    partition: Annotated[int, msgspec.Meta(ge=0)]
    offset: Annotated[int, msgspec.Meta(ge=0)]
    timestamp: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: list[dict[str, list[_Byte]]] = []


class _Event(msgspec.Struct, frozen=True, gc=False):
    records: dict[str, list[_Record]]


# msgspec, not pydantic: read straight into these structs, with the values' base64 decoded on the way, an event
# of 1,000 orders took 2.3 µs a record against 3.4 with pydantic's TypedDicts and pybase64 (docs/benchmarks.md).
_EVENT = msgspec.json.Decoder(_Event)


def _describe(exc: msgspec.DecodeError) -> str:
    if not isinstance(exc, msgspec.ValidationError):
        return f"the event is not JSON: {exc}"
    what, _, where = str(exc).partition(" - at `$")
    if not where.startswith(".records["):  # the event itself, or its records, is not what an event holds
        return "expected a Kafka event: an object with 'records' grouped by topic-partition"
    return f"malformed Kafka event at {where.strip('.`')}: {what}"


def _headers(headers: list[dict[str, list[int]]]) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, bytes(byte & 0xFF for byte in value)) for header in headers for name, value in header.items())


def decode_event(event: Any) -> list[KafkaRecord]:
    """Records of a Lambda Kafka event (MSK or self-managed), as read or as its JSON text (read straight
    into the records' shape, never a whole document first), in the event's order."""
    try:
        shape = _EVENT.decode(event) if isinstance(event, bytes) else msgspec.convert(event, _Event)
    except msgspec.DecodeError as exc:  # a ValidationError too
        raise BadEvent(_describe(exc)) from None
    records: list[KafkaRecord] = []
    for group, entries in shape.records.items():
        for entry in entries:
            record = KafkaRecord(  # positional: by keyword it takes twice as long, for every record
                entry.topic,
                entry.partition,
                entry.offset,
                entry.timestamp,
                entry.key,
                entry.value,
                _headers(entry.headers) if entry.headers else (),  # most records have none
            )
            if record.partition_name != group:  # or the failures we report would name another partition
                raise BadEvent(f"record {record.label} is filed under {group!r}")
            records.append(record)
    return records


def _entry(r: KafkaRecord) -> dict[str, Any]:
    return {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "timestampType": "CREATE_TIME",
        "key": None if r.key is None else pybase64.b64encode_as_string(r.key),
        "value": None if r.value is None else pybase64.b64encode_as_string(r.value),
        "headers": [{name: list(value)} for name, value in r.headers],
    }


_ENTRY = (
    b'{"topic": %b, "partition": %d, "offset": %d, "timestamp": %d, "timestampType": "CREATE_TIME", '
    b'"key": %b, "value": %b, "headers": %b}'
)
# The same with the value's base64 between quotes of the template: the value (most of the bytes) is copied
# once, into the entry, rather than once more to quote it.
_ENTRY_WITH_VALUE = _ENTRY.replace(b'"value": %b', b'"value": "%b"')


def _b64_json(value: bytes | None) -> bytes:
    return b"null" if value is None else b'"' + pybase64.b64encode(value) + b'"'


def _entry_json(r: KafkaRecord, topic_json: bytes) -> bytes:
    """``_entry`` as JSON (``topic_json``: the record's topic as JSON), written directly as bytes: base64 needs
    no escaping, and this runs for every record the trigger delivers (about seven times faster than
    ``json.dumps`` of the dict, and a quarter faster than a str encoded afterwards)."""
    headers = json.dumps([{name: list(value)} for name, value in r.headers]).encode() if r.headers else b"[]"
    key = _b64_json(r.key)
    if r.value is None:
        return _ENTRY % (topic_json, r.partition, r.offset, r.timestamp, key, b"null", headers)
    value = pybase64.b64encode(r.value)
    return _ENTRY_WITH_VALUE % (topic_json, r.partition, r.offset, r.timestamp, key, value, headers)


def _envelope(bootstrap_servers: str, records: Any) -> dict[str, Any]:
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": bootstrap_servers, "records": records}


def build_event(records: Iterable[KafkaRecord], bootstrap_servers: str) -> dict[str, Any]:
    """The event the platform would send for these records."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        grouped.setdefault(r.partition_name, []).append(_entry(r))
    return _envelope(bootstrap_servers, grouped)


def encode_events(
    records: Sequence[KafkaRecord], bootstrap_servers: str, max_bytes: int
) -> Iterator[tuple[Sequence[KafkaRecord], bytes]]:
    """One partition's records as consecutive events (JSON, as ``build_event``) of at most ``max_bytes``.

    A record too large for an event of its own still gets one, over the limit: the platform could not
    invoke the function with it at all, but here refusing it would stall its partition forever, and the
    ingest function dead-letters (or stores) it like any other record. Lazy: it encodes only as far as
    the caller reads.
    """
    if len({r.partition_name for r in records}) > 1:
        raise ValueError("encode_events takes the records of one partition")
    if not records:
        return
    head = json.dumps(_envelope(bootstrap_servers, {records[0].partition_name: []})).encode()
    head, tail = head[:-3], head[-3:]  # ... "orders-0": [  |  ]}}
    # An event is its head, its entries with a separator before each but the first, and its tail, joined once:
    # it is megabytes, and each concatenation would copy all of it again.
    start, pieces = 0, [head]
    size = len(head) + len(tail)
    topic_json = json.dumps(records[0].topic).encode()  # one partition: one topic
    for index, record in enumerate(records):
        piece = _entry_json(record, topic_json)
        if index > start and size + 2 + len(piece) > max_bytes:
            yield records[start:index], b"".join([*pieces, tail])
            start, pieces, size = index, [head], len(head) + len(tail)
        elif index > start:
            pieces.append(b", ")
            size += 2
        pieces.append(piece)
        size += len(piece)
    yield records[start:], b"".join([*pieces, tail])


def failed_offsets(answer: Any, records: Sequence[KafkaRecord]) -> set[tuple[str, int]]:
    """The records of this batch a partial batch response names as failed, as (partition, offset).

    Anything but a JSON object whose ``batchItemFailures`` is a list of identifiers of this batch raises
    ``BadResponse``: an answer we cannot read must never let a record be committed.
    """
    if not isinstance(answer, Mapping):
        raise BadResponse(f"the answer is JSON {type(answer).__name__}, not an object")
    failures = answer.get("batchItemFailures")
    if not isinstance(failures, list):
        raise BadResponse("the answer has no batchItemFailures list")
    failed: set[tuple[str, int]] = set()
    if not failures:  # the common answer: no set of the batch's thousand records made to look nothing up in
        return failed
    batch = {(r.partition_name, r.offset) for r in records}
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, Mapping):
            raise BadResponse(f"a failure is not {{'itemIdentifier': {{partition, offset}}}}: {failure!r:.100}")
        name, offset = identifier.get("partition"), identifier.get("offset")
        if not isinstance(name, str) or type(offset) is not int or (name, offset) not in batch:
            raise BadResponse(f"a failure names no record of the batch: {identifier!r:.100}")
        failed.add((name, offset))
    return failed
