"""The functions' metrics, under one set of names in both places they run.

Locally each function serves them on ``GET /metrics`` (Prometheus text, prometheus_client). gunicorn runs
several worker processes, so with ``PROMETHEUS_MULTIPROC_DIR`` set (infra/native/function.sh sets it) every
worker writes its figures to files there and a scrape adds them up, whichever worker answers it.
On Lambda there is no server to scrape: the handlers print the same samples as CloudWatch embedded metric
format, one document per invocation (``on_lambda``: Powertools Metrics).

The adapters count once per batch or request, from the ingest report or the lookup answer: never per record
in the core, which stays free of them.
"""

from __future__ import annotations

import bisect
import collections
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from orders_core.domain.ingest import IngestReport
from orders_core.http.responses import HttpResponse, method_not_allowed

log = logging.getLogger(__name__)

PATH = "/metrics"
_NO_STORE = {"Cache-Control": "no-store"}

# Every metric's name, written once: the functions, the trigger and the ops view (ops.py) read them here.
# Names as exposed (Prometheus conventions: a counter ends in ``_total``, a duration is in ``_seconds``).
INGEST_RECORDS = "orders_ingest_records_total"
INGEST_DEAD_LETTERS = "orders_ingest_dead_letters_total"
INGEST_BATCH_SECONDS = "orders_ingest_batch_seconds"
INGEST_INVOCATIONS = "orders_ingest_invocations_total"
LOOKUPS = "orders_lookups_total"  # order lookups only (GET /orders/{order_uid}), by the tier that had the order
LOOKUP_RESPONSES = "orders_lookup_responses_total"
LOOKUP_SECONDS = "orders_lookup_seconds"
HTTP_REQUESTS = "orders_http_requests_total"  # every request of get_order, by route and status
HTTP_REQUEST_SECONDS = "orders_http_request_seconds"
LOOKUP_STORE_QUEUE = "orders_lookup_store_queue"  # reads waiting for or holding a PostgreSQL thread
LOOKUP_STORE_QUEUE_CAPACITY = "orders_lookup_store_queue_capacity"
POSTGRES_CONNECTIONS = "orders_postgres_connections"
MEMCACHED_ERRORS = "orders_memcached_errors_total"
GENERATED = "orders_generated_total"
GENERATED_INVALID = "orders_generated_invalid_total"
DEAD_LETTER_QUEUE_MESSAGES = "orders_dead_letter_queue_messages"
DEAD_LETTER_QUEUE_OLDEST_SECONDS = "orders_dead_letter_queue_oldest_age_seconds"
# The trigger's (orders_local.trigger_status): one value per topic and partition.
TRIGGER_BATCHES = "orders_trigger_batches_total"
TRIGGER_CONSUMER_LAG = "orders_trigger_consumer_lag"
TRIGGER_CONSUMER_LAG_SECONDS = "orders_trigger_consumer_lag_seconds"
TRIGGER_COMMITTED_OFFSET = "orders_trigger_committed_offset"
TRIGGER_PARTITION_RETRYING = "orders_trigger_partition_retrying"
TRIGGER_RECORDS_UNREADABLE = "orders_trigger_records_unreadable_total"
TRIGGER_RECORDS_TOO_LARGE = "orders_trigger_records_too_large_total"

# How often ingest_order's /metrics asks the dead-letter queue (a scrape in between reuses the last answer).
DEAD_LETTER_READ_EVERY_S = 10.0

# get_order's routes, as the ``route`` label names them: a bounded set, whatever paths are asked for.
ORDER_ROUTE = "/orders/{order_uid}"
ROUTES = frozenset({ORDER_ROUTE, "/orders", "/health", "/livez", "/ops", PATH, "/openapi.json"})
OTHER_ROUTE = "other"

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# prometheus_client takes a counter's name without ``_total`` and adds it back: given as exposed, it strips it.
_PROMETHEUS: dict[str, Counter | Histogram] = {
    INGEST_RECORDS: Counter(INGEST_RECORDS, "Kafka records ingested, by outcome", ["outcome"]),
    INGEST_DEAD_LETTERS: Counter(INGEST_DEAD_LETTERS, "Records sent to the dead-letter queue, by reason", ["reason"]),
    INGEST_BATCH_SECONDS: Histogram(
        INGEST_BATCH_SECONDS, "Time to ingest one batch (check, store, dead-letter)", buckets=_BATCH_BUCKETS
    ),
    INGEST_INVOCATIONS: Counter(INGEST_INVOCATIONS, "Events delivered to ingest_order"),
    LOOKUPS: Counter(LOOKUPS, "Orders answered, by the tier that had them", ["tier"]),
    LOOKUP_RESPONSES: Counter(LOOKUP_RESPONSES, "Order lookups (GET /orders/{uid}) answered, by status", ["status"]),
    LOOKUP_SECONDS: Histogram(
        LOOKUP_SECONDS, "Time to answer one order lookup (GET /orders/{order_uid})", buckets=_LATENCY_BUCKETS
    ),
    HTTP_REQUESTS: Counter(HTTP_REQUESTS, "get_order requests answered, by route and status", ["route", "status"]),
    HTTP_REQUEST_SECONDS: Histogram(
        HTTP_REQUEST_SECONDS, "Time to answer one get_order request, by route", ["route"], buckets=_LATENCY_BUCKETS
    ),
    MEMCACHED_ERRORS: Counter(
        MEMCACHED_ERRORS,
        "memcached calls that failed and were taken as a miss (or skipped), by operation",
        ["operation"],
    ),
    GENERATED: Counter(GENERATED, "Orders produced to Kafka and acknowledged"),
    GENERATED_INVALID: Counter(GENERATED_INVALID, "Deliberately invalid orders among those produced"),
}
# Gauges of each worker process, added up over the live ones when scraped (prometheus_client's "livesum").
_STORE_QUEUE = Gauge(
    LOOKUP_STORE_QUEUE, "Lookups waiting for or holding a PostgreSQL read thread", multiprocess_mode="livesum"
)
_STORE_QUEUE_CAPACITY = Gauge(
    LOOKUP_STORE_QUEUE_CAPACITY,
    "Lookups the PostgreSQL read queue takes before it answers 503",
    multiprocess_mode="livesum",
)
_POSTGRES_CONNECTIONS = Gauge(
    POSTGRES_CONNECTIONS,
    "Open PostgreSQL connections, by pool (primary, replica)",
    ["pool"],
    multiprocess_mode="livesum",
)


def route_of(path: str) -> str:
    """The ``route`` label of a request path: one of :data:`ROUTES`, else ``other``."""
    normalised = "/" + path.strip("/")  # as the lookup API routes it
    if normalised.startswith("/orders/"):
        return ORDER_ROUTE
    return normalised if normalised in ROUTES else OTHER_ROUTE


def store_queue(in_use: int, capacity: int) -> None:
    """The PostgreSQL read queue of this worker now (its event loop's only: no lock)."""
    _STORE_QUEUE.set(in_use)
    _STORE_QUEUE_CAPACITY.set(capacity)


def postgres_connections(pool: str) -> Callable[[int], None]:
    """A hook for a store: called with its count of open connections whenever the count changes."""
    gauge = _POSTGRES_CONNECTIONS.labels(pool)
    return gauge.set


def memcached_error(operation: str) -> None:
    """Count one memcached call that failed (the cache takes it as a miss)."""
    to_prometheus([Sample(MEMCACHED_ERRORS, 1, {"operation": operation})])


@dataclass(frozen=True, slots=True)
class Sample:
    """One figure to add: a count, or a duration in seconds (``name`` ends in ``_seconds``)."""

    name: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


Emit = Callable[[Sequence[Sample]], None]


# Each labelled series once looked up, kept: ``labels()`` takes a lock and builds a key on every call, which
# a lookup answered in microseconds notices. The labels' values are few (outcomes, reasons, tiers, statuses).
_series: dict[tuple[str, tuple[tuple[str, str], ...]], Counter | Histogram] = {}


def _series_of(name: str, labels: Mapping[str, str]) -> Counter | Histogram:
    key = (name, tuple(labels.items()))
    series = _series.get(key)
    if series is None:
        metric = _PROMETHEUS[name]
        series = _series[key] = metric.labels(**labels) if labels else metric
    return series


def to_prometheus(samples: Sequence[Sample]) -> None:
    """Add the samples to this process's Prometheus metrics (served on /metrics)."""
    for sample in samples:
        series = _series_of(sample.name, sample.labels)
        if isinstance(series, Histogram):
            series.observe(sample.value)
        else:
            series.inc(sample.value)


def ingest_samples(report: IngestReport, seconds: float) -> list[Sample]:
    """What one delivered batch adds."""
    outcomes = {
        "stored": report.stored,
        "duplicate": report.duplicates,
        "dead_lettered": report.dead_lettered,
        "failed": len(report.failed),
    }
    return [
        Sample(INGEST_INVOCATIONS, 1),
        Sample(INGEST_BATCH_SECONDS, seconds),
        *(Sample(INGEST_RECORDS, count, {"outcome": outcome}) for outcome, count in outcomes.items()),
        *(
            Sample(INGEST_DEAD_LETTERS, count, {"reason": reason})
            for reason, count in report.dead_letter_reasons.items()
        ),
    ]


def request_samples(path: str, status: int, tier: str | None, seconds: float) -> list[Sample]:
    """What one get_order answer adds: every request by route; an order lookup also by status and tier (the
    cache tier, X-Cache, that had the order, if any). Health checks, the ops view's polls, scrapes and the API
    document are counted by route only, so the lookup figures are the customers' alone."""
    route = route_of(path)
    samples = [
        Sample(HTTP_REQUESTS, 1, {"route": route, "status": str(status)}),
        Sample(HTTP_REQUEST_SECONDS, seconds, {"route": route}),
    ]
    if route == ORDER_ROUTE:
        samples += [Sample(LOOKUP_RESPONSES, 1, {"status": str(status)}), Sample(LOOKUP_SECONDS, seconds)]
        if tier:
            samples.append(Sample(LOOKUPS, 1, {"tier": tier}))
    return samples


def _observe_block(histograms: Sequence[Histogram], seconds: Sequence[float]) -> None:
    """``Histogram.observe`` of many durations at once, into each of ``histograms``: each duration adds one to
    its bucket and itself to the sum (the exposition makes the buckets cumulative). prometheus_client has no
    call for a block, so this does the same, the buckets counted in C (``map``, ``Counter``), not a loop."""
    buckets = collections.Counter(map(functools.partial(bisect.bisect_left, _LATENCY_BUCKETS), seconds))
    total = sum(seconds)
    for histogram in histograms:
        for index, count in buckets.items():
            histogram._buckets[index].inc(count)
        histogram._sum.inc(total)


def count_request_block(
    routes: Sequence[str], statuses: Sequence[int], tiers: Sequence[str | None], seconds: Sequence[float]
) -> None:
    """Add many get_order answers at once, given as columns (the n-th answer is the n-th of each): its route
    (:func:`route_of`), status, tier and seconds. The same series as :func:`request_samples` feeds, for an
    adapter that counts in memory and adds up twenty times a second."""
    samples: list[Sample] = []
    for (route, status, tier), count in collections.Counter(zip(routes, statuses, tiers, strict=True)).items():
        samples.append(Sample(HTTP_REQUESTS, count, {"route": route, "status": str(status)}))
        if route == ORDER_ROUTE:
            samples.append(Sample(LOOKUP_RESPONSES, count, {"status": str(status)}))
            if tier:
                samples.append(Sample(LOOKUPS, count, {"tier": tier}))
    to_prometheus(samples)
    distinct = set(routes)
    for route in distinct:
        durations = seconds if len(distinct) == 1 else [s for r, s in zip(routes, seconds, strict=True) if r == route]
        histograms = [_histogram(HTTP_REQUEST_SECONDS, route=route)]
        if route == ORDER_ROUTE:
            histograms.append(_histogram(LOOKUP_SECONDS))
        _observe_block(histograms, durations)


def _histogram(name: str, **labels: str) -> Histogram:
    histogram = _series_of(name, labels)
    assert isinstance(histogram, Histogram)
    return histogram


def generated_samples(produced: int, invalid: int) -> list[Sample]:
    """What one generator run adds: the orders Kafka acknowledged, and the invalid ones among them."""
    return [Sample(GENERATED, produced), Sample(GENERATED_INVALID, invalid)]


def endpoint(method: str, *collectors: Collector, multiproc_dir: str | None = None) -> HttpResponse:
    """The answer to ``method`` on ``/metrics``: every worker's figures added up (multiprocess mode: the
    workers' files in ``multiproc_dir``), else this process's; then the figures of ``collectors`` (read now,
    e.g. the dead-letter queue's depth)."""
    if method not in ("GET", "HEAD"):
        return method_not_allowed(method, "GET")
    directory = multiproc_dir
    registry = REGISTRY
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    body = generate_latest(registry)
    if collectors:
        extra = CollectorRegistry(auto_describe=False)
        for collector in collectors:
            extra.register(collector)
        body += generate_latest(extra)
    return HttpResponse(200, body, {"Content-Type": CONTENT_TYPE_LATEST, **_NO_STORE})


class DeadLetterQueueCollector(Collector):
    """The dead-letter queue's depth and the age of its oldest letter, read at most every ``max_age_s`` (a
    scrape asks the queue no more often than that, however often it comes). A queue that cannot be read
    leaves the figures out, and says so in the log."""

    def __init__(self, read: Callable[[], tuple[int, float | None]], max_age_s: float) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._lock = threading.Lock()
        self._last: tuple[float, tuple[int, float | None] | None] | None = None

    def _figures(self) -> tuple[int, float | None] | None:
        with self._lock:  # one read at a time; the others take its answer
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= self._max_age_s:
                try:
                    figures: tuple[int, float | None] | None = self._read()
                except Exception as exc:  # a scrape never fails over the queue
                    log.warning("dead-letter queue unreadable for metrics: %s", exc)
                    figures = None
                self._last = (now, figures)
            return self._last[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self._figures()
        if figures is None:
            return
        messages, oldest_s = figures
        yield GaugeMetricFamily(
            DEAD_LETTER_QUEUE_MESSAGES, "Dead letters waiting in the queue (approximate)", value=messages
        )
        if oldest_s is not None:
            yield GaugeMetricFamily(
                DEAD_LETTER_QUEUE_OLDEST_SECONDS, "Age of the oldest dead letter seen waiting", value=oldest_s
            )
