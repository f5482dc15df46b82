"""Stand-ins for the processes' ``GET /metrics``: real Prometheus exposition, written by prometheus_client from
a registry the test fills with the metric names the functions and the trigger export."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from orders_core.http import metrics


class MetricsStandIn:
    """An HTTP server answering ``/metrics`` from its own registry (or ``status`` and ``body`` when set)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.status = 200
        self.body: bytes | None = None
        self.gate = threading.Event()  # cleared: requests wait until it is set again
        self.gate.set()
        self.waiting = 0  # requests held at the gate
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.waiting += 1
                stand_in.gate.wait(30)
                stand_in.waiting -= 1
                body = stand_in.body if stand_in.body is not None else generate_latest(stand_in.registry)
                self.send_response(stand_in.status if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/metrics"

    def counter(self, name: str, *labels: str) -> Counter:
        return Counter(name, name, labels, registry=self.registry)

    def gauge(self, name: str, *labels: str) -> Gauge:
        return Gauge(name, name, labels, registry=self.registry)

    def histogram(self, name: str) -> Histogram:
        return Histogram(name, name, registry=self.registry)  # prometheus_client's default buckets

    def start(self) -> MetricsStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def stand_ins(count: int) -> Iterator[list[MetricsStandIn]]:
    started = [MetricsStandIn().start() for _ in range(count)]
    try:
        yield started
    finally:
        for stand_in in started:
            stand_in.stop()


@contextmanager
def silent_server() -> Iterator[str]:
    """A /metrics URL whose server takes the connection and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # connections queue in the backlog; nothing ever accepts them
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/metrics"


class Fleet:
    """One stand-in per process of the stack, with the contract's metrics (named as ``metrics.py`` names them)."""

    def __init__(self, ingest: MetricsStandIn, lookup: MetricsStandIn, trigger: MetricsStandIn) -> None:
        self.ingest, self.lookup, self.trigger = ingest, lookup, trigger
        self.records = ingest.counter(metrics.INGEST_RECORDS, "outcome")
        self.dead_letters = ingest.counter(metrics.INGEST_DEAD_LETTERS, "reason")
        self.batch_seconds = ingest.histogram(metrics.INGEST_BATCH_SECONDS)
        self.letters_waiting = ingest.gauge(metrics.DEAD_LETTER_QUEUE_MESSAGES)
        self.oldest_letter = ingest.gauge(metrics.DEAD_LETTER_QUEUE_OLDEST_SECONDS)
        self.lookups = lookup.counter(metrics.LOOKUPS, "tier")
        self.responses = lookup.counter(metrics.LOOKUP_RESPONSES, "status")
        self.lookup_seconds = lookup.histogram(metrics.LOOKUP_SECONDS)
        self.lag = trigger.gauge(metrics.TRIGGER_CONSUMER_LAG, "topic", "partition")
        self.lag_seconds = trigger.gauge(metrics.TRIGGER_CONSUMER_LAG_SECONDS, "topic", "partition")
        self.committed = trigger.gauge(metrics.TRIGGER_COMMITTED_OFFSET, "topic", "partition")
        self.retrying = trigger.gauge(metrics.TRIGGER_PARTITION_RETRYING, "topic", "partition")

    def urls(self) -> str:
        """The value of OPS_METRICS_URLS for these stand-ins."""
        return f"ingest_order={self.ingest.url},get_order={self.lookup.url},trigger={self.trigger.url}"
