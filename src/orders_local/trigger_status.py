"""What the trigger says about itself, on its own small HTTP server (``TRIGGER_STATUS_PORT``):

* ``GET /status``: JSON — the partitions assigned to it, the last commit of each (confirmed by the broker),
  each one's consumer lag in records (from librdkafka's statistics) and in seconds (the age of the oldest
  record consumed and not yet committed), and which partitions are retrying a batch.
* ``GET /metrics``: the same figures as Prometheus metrics, with the count of invocations by outcome.
* ``GET /health``: 200 while the trigger consumes; 503 saying why once it failed (a fatal consumer error, a
  delivery thread that died) and is shutting down to exit non-zero. ``/status`` then answers 503 too.

The trigger is one process, so its metrics live in a registry of its own, read at scrape time from the
same state as ``/status``: a partition revoked disappears from both at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orders_core.http import metrics
from orders_core.http.responses import HttpResponse, json_response
from orders_local.status_server import serve

log = logging.getLogger(__name__)
PartitionKey = tuple[str, int]


@dataclass
class PartitionState:
    committed_offset: int | None = None
    committed_at: float | None = None  # seconds since the epoch
    lag: int | None = None  # None until librdkafka knows both the end of the partition and our commit
    retrying: bool = False
    oldest_uncommitted_at: float | None = None  # the timestamp of the oldest record consumed, not yet committed


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")


def lags_of(statistics: Mapping[str, Any], topic: str) -> dict[int, int | None]:
    """Each partition's consumer lag in librdkafka's statistics: the end of the partition less the
    committed offset; None while either is unknown.

    librdkafka says -1 when the group never committed on the partition; consuming then starts at the
    partition's first offset (``auto.offset.reset=earliest``), so the lag is all of it: end less start."""
    partitions = statistics.get("topics", {}).get(topic, {}).get("partitions", {})
    lags: dict[int, int | None] = {}
    for name, figures in partitions.items():
        if int(name) < 0:  # librdkafka lists an internal partition -1
            continue
        lag = figures.get("consumer_lag", -1)
        if lag == -1 and figures.get("committed_offset", -1) < 0:
            end, start = figures.get("ls_offset", -1), figures.get("lo_offset", -1)
            lag = end - start if end >= 0 and start >= 0 else -1
        lags[int(name)] = lag if isinstance(lag, int) and lag >= 0 else None
    return lags


def committed_of(statistics: Mapping[str, Any], topic: str) -> dict[int, int]:
    """Each partition's committed offset as librdkafka knows it (read from the group when assigned)."""
    partitions = statistics.get("topics", {}).get(topic, {}).get("partitions", {})
    return {
        int(name): offset
        for name, figures in partitions.items()
        if isinstance(offset := figures.get("committed_offset"), int) and offset >= 0
    }


class TriggerStatus:
    """The trigger's state as it reports it: written by the consumer's thread (assignments, commits,
    statistics) and the delivery threads (retrying), read by the status server's threads."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._partitions: dict[PartitionKey, PartitionState] = {}
        self._statistics_at: float | None = None
        # Per partition, (offset, timestamp in seconds) of each record consumed and not yet committed, in offset
        # order: the first one's age is the lag in seconds.
        self._uncommitted: dict[PartitionKey, deque[tuple[int, float]]] = {}
        self.failure: str | None = None  # why the trigger is stopping to exit non-zero; None while it is well
        self.registry = CollectorRegistry(auto_describe=True)
        self.batches = Counter(
            metrics.TRIGGER_BATCHES,
            "Invocations of the ingest function: accepted (it took every record sent) or retried.",
            ["outcome"],
            registry=self.registry,
        )
        self.unreadable = Counter(
            metrics.TRIGGER_RECORDS_UNREADABLE,
            "Records delivered without a part that could not be read (headers whose name is not UTF-8).",
            registry=self.registry,
        )
        self.too_large = Counter(
            metrics.TRIGGER_RECORDS_TOO_LARGE,
            "Records that alone make an event over the payload limit: dead-lettered by the trigger (too_large).",
            registry=self.registry,
        )
        self.registry.register(_PartitionCollector(self))

    def fail(self, reason: str) -> None:
        """The trigger cannot go on: say why, on /status and /health, until it exits."""
        with self._lock:
            self.failure = self.failure or reason

    def health(self) -> tuple[int, dict[str, Any]]:
        """The trigger's health: 200 while it consumes, 503 with the reason once it failed."""
        with self._lock:
            failure = self.failure
        if failure is None:
            return 200, {"status": "ok"}
        return 503, {"status": "failed", "failure": failure}

    def assign(self, keys: Iterable[PartitionKey]) -> None:
        with self._lock:
            for key in keys:
                self._partitions.setdefault(key, PartitionState())

    def unassign(self, keys: Iterable[PartitionKey]) -> None:
        with self._lock:
            for key in keys:
                self._partitions.pop(key, None)
                self._uncommitted.pop(key, None)

    def consumed(self, key: PartitionKey, records: Iterable[tuple[int, float]]) -> None:
        """Records of one partition taken from Kafka, as ``(offset, timestamp in seconds)`` in offset order (a
        record consumed again after a rebalance is noted once)."""
        with self._lock:
            if key not in self._partitions:
                return
            waiting = self._uncommitted.setdefault(key, deque())
            for offset, timestamp in records:
                if not waiting or offset > waiting[-1][0]:
                    waiting.append((offset, timestamp))

    def committed(self, key: PartitionKey, offset: int) -> None:
        with self._lock:
            if (state := self._partitions.get(key)) is not None:
                state.committed_offset, state.committed_at = offset, time.time()
            waiting = self._uncommitted.get(key)
            while waiting and waiting[0][0] < offset:
                waiting.popleft()

    def set_retrying(self, key: PartitionKey, retrying: bool) -> None:
        with self._lock:
            if (state := self._partitions.get(key)) is not None:
                state.retrying = retrying

    def statistics(self, statistics_json: str) -> None:
        """librdkafka's ``stats_cb``: note each assigned partition's lag."""
        try:
            statistics = json.loads(statistics_json)
            lags, committed = lags_of(statistics, self.topic), committed_of(statistics, self.topic)
        except (ValueError, AttributeError, TypeError):  # never break the consumer's poll over a report
            log.warning("unreadable librdkafka statistics", exc_info=True)
            return
        with self._lock:
            self._statistics_at = time.time()
            for (topic, partition), state in self._partitions.items():
                if topic == self.topic and partition in lags:
                    state.lag = lags[partition]
                if topic == self.topic and state.committed_offset is None and partition in committed:
                    state.committed_offset = committed[partition]  # committed before this trigger took it

    def partitions(self) -> dict[PartitionKey, PartitionState]:
        """A copy of each assigned partition's state."""
        with self._lock:
            copies = {key: PartitionState(**vars(state)) for key, state in sorted(self._partitions.items())}
            for key, state in copies.items():
                if waiting := self._uncommitted.get(key):
                    state.oldest_uncommitted_at = waiting[0][1]
            return copies

    def as_json(self) -> dict[str, Any]:
        now = time.time()
        partitions = {f"{topic}-{partition}": state for (topic, partition), state in self.partitions().items()}
        return {
            "function": "trigger",
            "failure": self.failure,
            "assigned": list(partitions),
            "retrying": [name for name, state in partitions.items() if state.retrying],
            "partitions": {
                name: {
                    "committed_offset": state.committed_offset,
                    "committed_at": _iso(state.committed_at),
                    "lag": state.lag,
                    "lag_seconds": lag_seconds(state, now),
                    "retrying": state.retrying,
                }
                for name, state in partitions.items()
            },
            "statistics_at": _iso(self._statistics_at),
        }


class _PartitionCollector(Collector):
    """The per-partition gauges, read from the status at scrape time."""

    def __init__(self, status: TriggerStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["topic", "partition"]
        lag = GaugeMetricFamily(
            metrics.TRIGGER_CONSUMER_LAG,
            "Records of the partition not yet committed (librdkafka's consumer_lag).",
            labels=labels,
        )
        lag_seconds_ = GaugeMetricFamily(
            metrics.TRIGGER_CONSUMER_LAG_SECONDS,
            "Age of the partition's oldest record consumed and not yet committed; 0 when caught up.",
            labels=labels,
        )
        committed = GaugeMetricFamily(
            metrics.TRIGGER_COMMITTED_OFFSET, "The partition's last committed offset.", labels=labels
        )
        retrying = GaugeMetricFamily(
            metrics.TRIGGER_PARTITION_RETRYING, "1 while the partition retries a batch.", labels=labels
        )
        now = time.time()
        for (topic, partition), state in self._status.partitions().items():
            values = [topic, str(partition)]
            if state.lag is not None:
                lag.add_metric(values, state.lag)
            if (seconds := lag_seconds(state, now)) is not None:
                lag_seconds_.add_metric(values, seconds)
            if state.committed_offset is not None:
                committed.add_metric(values, state.committed_offset)
            retrying.add_metric(values, int(state.retrying))
        yield from (lag, lag_seconds_, committed, retrying)


def lag_seconds(state: PartitionState, now: float) -> float | None:
    """How long the partition's oldest uncommitted record has waited (since Kafka took it); 0 when nothing
    consumed waits and librdkafka sees no lag; None when records wait that were not consumed yet (their age is
    unknown until they are)."""
    if state.oldest_uncommitted_at is not None:
        return round(max(0.0, now - state.oldest_uncommitted_at), 3)
    return 0.0 if state.lag == 0 else None


def serve_status(status: TriggerStatus, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/status``, ``/health`` and ``/metrics`` on a daemon thread; ``shutdown()`` the server to stop."""

    def status_answer() -> HttpResponse:
        code = 200 if status.failure is None else 503
        return json_response(code, status.as_json(), **{"Cache-Control": "no-store"})

    def health_answer() -> HttpResponse:
        code, answer = status.health()
        return json_response(code, answer, **{"Cache-Control": "no-store"})

    return serve(
        {
            "/status": status_answer,
            "/health": health_answer,
            "/metrics": lambda: HttpResponse(
                200, generate_latest(status.registry), {"Content-Type": CONTENT_TYPE_LATEST}
            ),
        },
        host,
        port,
        "trigger",
    )
