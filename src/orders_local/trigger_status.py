"""What the trigger says about itself, on its own small HTTP server (``TRIGGER_STATUS_PORT``):

* ``GET /status``: JSON — the partitions assigned to it, the last commit of each (confirmed by the broker),
  each one's consumer lag (from librdkafka's statistics) and which partitions are retrying a batch.
* ``GET /metrics``: the same figures as Prometheus metrics, with the count of invocations by outcome.

The trigger is one process, so its metrics live in a registry of its own, read at scrape time from the
same state as ``/status``: a partition revoked disappears from both at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from orders_core.http.responses import JSON_TYPE, HttpResponse, error, json_response

log = logging.getLogger(__name__)
PartitionKey = tuple[str, int]


@dataclass
class PartitionState:
    committed_offset: int | None = None
    committed_at: float | None = None  # seconds since the epoch
    lag: int | None = None  # None until librdkafka knows both the end of the partition and our commit
    retrying: bool = False


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
    return {int(name): offset for name, figures in partitions.items()
            if isinstance(offset := figures.get("committed_offset"), int) and offset >= 0}  # fmt: skip


class TriggerStatus:
    """The trigger's state as it reports it: written by the consumer's thread (assignments, commits,
    statistics) and the delivery threads (retrying), read by the status server's threads."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._lock = threading.Lock()
        self._partitions: dict[PartitionKey, PartitionState] = {}
        self._statistics_at: float | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.batches = Counter(
            "orders_trigger_batches",
            "Invocations of the ingest function: accepted (it took every record sent) or retried.",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(_PartitionCollector(self))

    def assign(self, keys: Iterable[PartitionKey]) -> None:
        with self._lock:
            for key in keys:
                self._partitions.setdefault(key, PartitionState())

    def unassign(self, keys: Iterable[PartitionKey]) -> None:
        with self._lock:
            for key in keys:
                self._partitions.pop(key, None)

    def committed(self, key: PartitionKey, offset: int) -> None:
        with self._lock:
            if (state := self._partitions.get(key)) is not None:
                state.committed_offset, state.committed_at = offset, time.time()

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
            return {key: PartitionState(**vars(state)) for key, state in sorted(self._partitions.items())}

    def as_json(self) -> dict[str, Any]:
        partitions = {f"{topic}-{partition}": state for (topic, partition), state in self.partitions().items()}
        return {
            "function": "trigger",
            "assigned": list(partitions),
            "retrying": [name for name, state in partitions.items() if state.retrying],
            "partitions": {
                name: {
                    "committed_offset": state.committed_offset,
                    "committed_at": _iso(state.committed_at),
                    "lag": state.lag,
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
        lag = GaugeMetricFamily("orders_trigger_consumer_lag", "Records of the partition not yet committed "
                                "(librdkafka's consumer_lag).", labels=labels)  # fmt: skip
        committed = GaugeMetricFamily("orders_trigger_committed_offset", "The partition's last committed offset.",
                                      labels=labels)  # fmt: skip
        retrying = GaugeMetricFamily("orders_trigger_partition_retrying", "1 while the partition retries a batch.",
                                     labels=labels)  # fmt: skip
        for (topic, partition), state in self._status.partitions().items():
            values = [topic, str(partition)]
            if state.lag is not None:
                lag.add_metric(values, state.lag)
            if state.committed_offset is not None:
                committed.add_metric(values, state.committed_offset)
            retrying.add_metric(values, int(state.retrying))
        yield from (lag, committed, retrying)


def serve_status(status: TriggerStatus, host: str, port: int) -> ThreadingHTTPServer:
    """Serve ``/status`` and ``/metrics`` on a daemon thread; ``shutdown()`` the server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/status":
                self._send(json_response(200, status.as_json(), **{"Cache-Control": "no-store"}))
            elif path == "/metrics":
                self._send(HttpResponse(200, generate_latest(status.registry), {"Content-Type": CONTENT_TYPE_LATEST}))
            else:
                self._send(error(404, "not_found", f"No such endpoint: {path[:100]}. Try /status or /metrics."))

        do_HEAD = do_GET  # _send leaves the body out

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server's own errors (a bad request line, an unknown method) in JSON, as every answer.
            self.close_connection = True
            phrase = HTTPStatus(code).phrase
            self._send(error(code, phrase.lower().replace(" ", "_"), message or phrase))

        def _send(self, answer: HttpResponse) -> None:
            self.send_response(answer.status)
            for name, value in {"Content-Type": JSON_TYPE, **answer.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("status server: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="status-server", daemon=True).start()
    return server
