"""Test orders onto Kafka: the request callers send, the producer, and what one call delivered.

:class:`GenerateRequest` is the one validator of what a caller may ask for (HTTP body, scheduler input,
CLI arguments); :func:`produce_orders` builds the orders (``generator.py``) and returns only once Kafka has
acknowledged every one, or raises :class:`ProduceError`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from orders_core.adapters.kafka_client import (
    KafkaAuthError,
    KafkaSettings,
    client_config,
    connection_key,
    flush,
    raise_if_refused,
    refusal,
)
from orders_core.config import Settings, narrow
from orders_core.domain.model import Timestamp
from orders_core.generator.builder import DEFAULT_MAX_ITEMS, iter_flagged_orders


class GenerateRequest(BaseModel):
    """What a caller may ask for (HTTP body, scheduler input, CLI arguments).

    A schedule names its ``occurrence`` (and itself): the orders are then those of that occurrence, the same
    however often it runs (a retry after a timeout, the platform's own retries), so a repeat is stored once.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    count: int = Field(10, ge=1, description="how many orders (at most GENERATE_MAX_COUNT a call of the function)")
    seed: int | None = Field(None, description="same seed, same orders")
    invalid_ratio: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False, description="share of invalid ones")
    max_items: int = Field(DEFAULT_MAX_ITEMS, ge=1, le=1000, description="items per order, 1 to this")
    # Which scheduled run this is: EventBridge Scheduler fills them in (template.yaml's schedule Input: its ARN
    # and <aws.scheduler.scheduled-time>), the same on every retry of one occurrence, so that a retried run
    # produces the same orders again.
    schedule: str | None = Field(None, min_length=1, max_length=2048, description="the schedule that asked (its ARN)")
    occurrence: Timestamp | None = Field(None, description="the scheduled time of this run, RFC 3339")

    @field_validator("count")
    @classmethod
    def _count_bound(cls, value: int, info: ValidationInfo) -> int:
        limit = (info.context or {}).get("max_count")
        if limit is not None and value > limit:
            raise ValueError(f"count must be at most {limit} (GENERATE_MAX_COUNT)")
        return value

    @classmethod
    def of_call(cls, payload: Any, settings: Settings) -> GenerateRequest:
        """A request to the function: its count bounded by ``GENERATE_MAX_COUNT``."""
        return cls.model_validate(payload, context={"max_count": settings.generate_max_count})

    def run_seed(self, key: str = "") -> int | None:
        """The seed of this run: the one asked for; else, for a scheduled occurrence, one derived from the
        schedule and the occurrence time (keyed with ``key``: the uids are then not computable from the
        schedule alone); else none (fresh orders)."""
        if self.seed is not None or self.occurrence is None:
            return self.seed
        occurrence = f"{self.schedule or ''}\n{self.occurrence}".encode()
        digest = hashlib.blake2b(occurrence, digest_size=8, key=key.encode()[:64]).digest()
        return int.from_bytes(digest, "big") >> 1


def describe_request_error(error: ValidationError) -> str:
    """One readable line for a refused request (no echo of the input)."""
    parts = []
    for e in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(parts)


class ProduceError(RuntimeError):
    """Some orders were not acknowledged by Kafka; ``unavailable`` when the broker could not be reached."""

    def __init__(self, message: str, *, produced: int, failed: int, undelivered: int, unavailable: bool) -> None:
        super().__init__(message)
        self.produced = produced
        self.failed = failed
        self.undelivered = undelivered
        self.unavailable = unavailable


@dataclass
class ProduceResult:
    produced: int
    invalid: int
    elapsed_s: float
    sample_uids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.produced / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_response(self) -> dict[str, Any]:
        """The JSON answer of the HTTP function and the scheduler handler."""
        return {
            "produced": self.produced,
            "invalid": self.invalid,
            "order_uids": self.sample_uids,
            "elapsed_ms": round(self.elapsed_s * 1000, 1),
        }


_UNAVAILABLE_CODES: Final = frozenset(
    {"_MSG_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE", "REQUEST_TIMED_OUT"}
)


class _Deliveries:
    """Counts every delivery report of one ``produce_orders`` call (callbacks run on any polling thread)."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.unavailable = 0
        self.first_error: str | None = None
        self._lock = threading.Lock()

    def __call__(self, err: Any, _msg: Any) -> None:
        with self._lock:
            if err is None:
                self.ok += 1
                return
            self.failed += 1
            if err.name() in _UNAVAILABLE_CODES:
                self.unavailable += 1
            if self.first_error is None:
                self.first_error = f"{err.name()}: {err.str()}"


# ------------------------------------------------------------------------------------------ the producer

# One producer per cluster, login and timeout for the life of the process (a warm instance reuses its connection).
_producers: dict[tuple[Any, ...], Any] = {}
_producers_lock = threading.Lock()
_reported_errors: set[str] = set()


def _on_client_error(bootstrap_servers: str, err: Any) -> None:
    refused = refusal(err) is not None
    # An idempotent producer that hit a fatal error is unusable, and one refused keeps its old credentials (a
    # secret rotated since): build a new one next time.
    if err.fatal() or refused:
        close_producers()
    if err.fatal() or err.name() not in _reported_errors:  # librdkafka repeats these at every reconnect
        _reported_errors.add(err.name())
        print(f"orders-generate: kafka: {err.name()}: {err.str()}", file=sys.stderr)
    raise_if_refused(bootstrap_servers, err)


def _timeout_ms(settings: Settings) -> int:
    return int(settings.generate_message_timeout_s * 1000)


def get_producer(settings: Settings) -> Any:
    """The process-wide producer for these settings (created on first use, then reused)."""
    from confluent_kafka import Producer

    connection = narrow(settings, KafkaSettings)
    key = (*connection_key(connection), _timeout_ms(settings))
    with _producers_lock:
        producer = _producers.get(key)
        if producer is None:
            producer = _producers[key] = Producer(
                {
                    **client_config(connection),
                    "client.id": "orders-generate",
                    "enable.idempotence": True,
                    "acks": "all",
                    "compression.type": "lz4",
                    "linger.ms": 10,
                    "batch.size": 1_000_000,
                    "batch.num.messages": 10_000,
                    "queue.buffering.max.messages": 500_000,
                    "queue.buffering.max.kbytes": 1_048_576,
                    "message.timeout.ms": _timeout_ms(settings),
                    "error_cb": functools.partial(_on_client_error, settings.kafka_bootstrap_servers),
                }
            )
        return producer


def ping_kafka(settings: Settings, timeout_s: float = 3.0) -> None:
    """Raise unless the producer reaches the cluster and it knows the topic (readiness of generate_orders)."""
    # Every topic's metadata, not the one topic's: asking for a missing topic by name may create it.
    metadata = get_producer(settings).list_topics(timeout=timeout_s)
    topic = metadata.topics.get(settings.kafka_topic)
    if topic is None or topic.error is not None:
        raise RuntimeError(f"topic {settings.kafka_topic!r}: {None if topic is None else topic.error}")


def close_producers() -> None:
    """Forget every cached producer (each closes when collected), e.g. before its broker goes away."""
    with _producers_lock:
        _producers.clear()


def _forget_producer(producer: Any) -> None:
    with _producers_lock:
        for key, cached in list(_producers.items()):
            if cached is producer:
                del _producers[key]


# ------------------------------------------------------------------------------------------ producing


def produce_orders(
    request: GenerateRequest, settings: Settings, *, progress: Callable[[int], None] | None = None
) -> ProduceResult:
    """Generate the requested orders onto ``settings.kafka_topic`` (key = order_uid); raise if any is not acked.

    Returns only when every message has a delivery report; raises :class:`ProduceError` when a report
    was an error or messages were still undelivered when the flush timed out. ``progress`` is called with
    the number of orders sent since its last call.
    """
    producer = get_producer(settings)
    reports = _Deliveries()
    anchor = None if request.occurrence is None else _epoch_seconds(request.occurrence)
    seed = request.run_seed(settings.generate_seed_key)
    orders = iter_flagged_orders(request.count, seed, request.invalid_ratio, request.max_items, anchor=anchor)
    started = time.perf_counter()
    sent = invalid = 0
    sample: list[str] = []
    try:
        for uid, is_invalid in _send(producer, settings.kafka_topic, orders, reports):
            sent += 1
            invalid += is_invalid
            if len(sample) < 10:
                sample.append(uid)
            if progress is not None and not sent & 1023:
                progress(1024)
        flush(producer, settings.generate_message_timeout_s + 10)  # serves the remaining delivery reports
    except KafkaAuthError as exc:  # raised by the error callback: waiting longer cannot help
        _forget_producer(producer)
        with contextlib.suppress(KafkaAuthError):
            producer.purge()  # nothing queued is sent: the orders were not delivered, and are reported so
            producer.poll(0)
        raise ProduceError(
            f"{exc} ({reports.ok} of {sent} orders acknowledged before)",
            produced=reports.ok,
            failed=sent - reports.ok,
            undelivered=sent - reports.ok - reports.failed,
            unavailable=False,
        ) from exc
    if progress is not None:
        progress(sent & 1023)
    elapsed = time.perf_counter() - started
    # Our own count, not flush()'s: another thread's orders may share this producer's queue.
    undelivered = sent - reports.ok - reports.failed
    if reports.failed or undelivered:
        _forget_producer(producer)  # start afresh next time (e.g. the broker was down)
        raise ProduceError(
            f"{reports.failed} of {sent} orders failed and {undelivered} were still undelivered after the "
            f"flush to {settings.kafka_topic!r} at {settings.kafka_bootstrap_servers}"
            + (f"; first error {reports.first_error}" if reports.first_error else ""),
            produced=reports.ok,
            failed=reports.failed,
            undelivered=undelivered,
            unavailable=reports.unavailable == reports.failed,
        )
    return ProduceResult(produced=reports.ok, invalid=invalid, elapsed_s=elapsed, sample_uids=sample)


def _epoch_seconds(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def _send(
    producer: Any, topic: str, orders: Iterator[tuple[str, bytes, bool]], reports: _Deliveries
) -> Iterator[tuple[str, bool]]:
    """Hand each order to the producer, waiting for room when its queue is full; yields ``(uid, is_invalid)``."""
    produce, poll = producer.produce, producer.poll
    for sent, (uid, value, is_invalid) in enumerate(orders, 1):
        while True:
            try:
                produce(topic, value, uid, on_delivery=reports)
                break
            except BufferError:  # the local queue is full: serve delivery reports until there is room
                poll(0.05)
        if not sent & 1023:
            poll(0)
        yield uid, is_invalid
