"""The event AWS Lambda receives from a Kafka event source, both ways: decoded by the ingest function and
built by the local trigger, so the two always agree on the format."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


class BadEvent(ValueError):
    """The envelope is not a Kafka event: nothing in it can be processed."""


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def item_identifier(self) -> str:
        """How a failed record is named in ``batchItemFailures``."""
        return f"{self.topic}-{self.partition}@{self.offset}"


def _b64(value: Any, what: str) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadEvent(f"{what} must be a base64 string")
    try:
        return binascii.a2b_base64(value, strict_mode=True)  # strict, and in C: values are large
    except (binascii.Error, ValueError) as exc:
        raise BadEvent(f"{what} is not valid base64") from exc


def decode_event(event: Any) -> list[KafkaRecord]:
    """Records of a Lambda Kafka event (MSK or self-managed), in partition and offset order."""
    if not isinstance(event, Mapping) or not isinstance(event.get("records"), Mapping):
        raise BadEvent("expected a Kafka event: an object with 'records' grouped by topic-partition")
    records: list[KafkaRecord] = []
    for group, entries in event["records"].items():
        if not isinstance(entries, list):
            raise BadEvent(f"records[{group!r}] must be a list")
        for entry in entries:
            try:
                headers = tuple(
                    (name, bytes(value)) for header in entry.get("headers") or () for name, value in header.items()
                )
                records.append(
                    KafkaRecord(
                        topic=str(entry["topic"]),
                        partition=int(entry["partition"]),
                        offset=int(entry["offset"]),
                        timestamp=int(entry.get("timestamp") or 0),
                        key=_b64(entry.get("key"), "key"),
                        value=_b64(entry.get("value"), "value"),
                        headers=headers,
                    )
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                if isinstance(exc, BadEvent):
                    raise
                raise BadEvent(f"malformed record in {group!r}: {exc!r}") from exc
    return records


def build_event(records: Iterable[KafkaRecord], bootstrap_servers: str) -> dict[str, Any]:
    """The event the platform would send for these records."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        grouped.setdefault(f"{r.topic}-{r.partition}", []).append(
            {
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "timestamp": r.timestamp,
                "timestampType": "CREATE_TIME",
                "key": None if r.key is None else base64.b64encode(r.key).decode(),
                "value": None if r.value is None else base64.b64encode(r.value).decode(),
                "headers": [{name: list(value)} for name, value in r.headers],
            }
        )
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": bootstrap_servers, "records": grouped}
