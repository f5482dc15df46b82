"""The ops view's figures: every process's Prometheus ``/metrics``, scraped server-side into one JSON answer.

get_order answers ``GET /ops`` with it (``OPS_METRICS_URLS``; unset, the deployed default, means 404). The
figures are cumulative, as the processes count them; the page derives rates and the hit ratio between two
polls, so this module keeps no history and any number of pages can poll it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import urllib3
from prometheus_client.parser import text_string_to_metric_families

from orders_core.http import metrics

log = logging.getLogger(__name__)

# Counters the page charts: key in the answer -> (sample name, the label it is broken down by, or None).
COUNTERS: dict[str, tuple[str, str | None]] = {
    "ingest_records": (metrics.INGEST_RECORDS, "outcome"),
    "dead_letters": (metrics.INGEST_DEAD_LETTERS, "reason"),
    "ingest_invocations": (metrics.INGEST_INVOCATIONS, None),
    "lookups": (metrics.LOOKUPS, "tier"),
    "lookup_responses": (metrics.LOOKUP_RESPONSES, "status"),
    "http_requests": (metrics.HTTP_REQUESTS, "route"),
    "memcached_errors": (metrics.MEMCACHED_ERRORS, "operation"),
    "generated": (metrics.GENERATED, None),
    "generated_invalid": (metrics.GENERATED_INVALID, None),
    "trigger_batches": (metrics.TRIGGER_BATCHES, "outcome"),
}
# Gauges: key -> (sample name, label or None, how sources combine). Instances of a function add up their own
# (queues, connections); the dead-letter queue is one queue whoever reads it, so its figure is the largest read.
GAUGES: dict[str, tuple[str, str | None, str]] = {
    "dead_letter_queue_messages": (metrics.DEAD_LETTER_QUEUE_MESSAGES, None, "max"),
    "dead_letter_queue_oldest_age_seconds": (metrics.DEAD_LETTER_QUEUE_OLDEST_SECONDS, None, "max"),
    "lookup_store_queue": (metrics.LOOKUP_STORE_QUEUE, None, "sum"),
    "lookup_store_queue_capacity": (metrics.LOOKUP_STORE_QUEUE_CAPACITY, None, "sum"),
    "postgres_connections": (metrics.POSTGRES_CONNECTIONS, "pool", "sum"),
}
# Histograms: key -> the histogram's name; answered as cumulative buckets, count and sum, for the page to
# derive quantiles between two polls.
HISTOGRAMS: dict[str, str] = {
    "lookup_seconds": metrics.LOOKUP_SECONDS,
    "ingest_batch_seconds": metrics.INGEST_BATCH_SECONDS,
}
# The trigger's gauges, one value per (topic, partition): key in each partition's entry -> sample name.
PARTITION_GAUGES = {
    "lag": metrics.TRIGGER_CONSUMER_LAG,
    "lag_seconds": metrics.TRIGGER_CONSUMER_LAG_SECONDS,
    "committed_offset": metrics.TRIGGER_COMMITTED_OFFSET,
    "retrying": metrics.TRIGGER_PARTITION_RETRYING,
}
MAX_BODY_BYTES = 4 * 1024 * 1024  # a metrics page is a few KiB; a larger one is cut off rather than held in memory
# Answers younger than this are shared: pages polling every few seconds cost the sources one scrape a second at
# most, however many are open (and a flood of /ops cannot become a flood of scrapes).
REUSE_S = 1.0


class MetricsScraper:
    """Scrapes the configured sources concurrently, each within ``timeout_s``; a dead source is reported, never
    fatal. Thread-safe: one scrape at a time, its answer shared for :data:`REUSE_S`. The scrape runs on the
    caller's thread (get_order's PostgreSQL pool in ASGI mode), so other callers never wait for it."""

    def __init__(
        self, sources: Mapping[str, str], timeout_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._sources = dict(sources)
        self._timeout_s = timeout_s
        self._http = urllib3.PoolManager(maxsize=2, retries=False, timeout=urllib3.Timeout(total=timeout_s))
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, Any]] | None = None

    def snapshot(self) -> dict[str, Any]:
        """``{"time", "sources", "counters", "gauges", "histograms", "partitions"}``, at most :data:`REUSE_S` old, or
        the last one while another thread is scraping (a request never waits behind another's scrape)."""
        last = self._last
        if last is not None and self._clock() - last[0] < REUSE_S:
            return last[1]
        if not self._lock.acquire(blocking=last is None):  # only the very first callers wait: there is nothing yet
            assert last is not None
            return last[1]
        try:
            if self._last is last:  # nobody refreshed it while this thread waited
                self._last = (self._clock(), self._scrape())
            assert self._last is not None
            return self._last[1]
        finally:
            self._lock.release()

    def _scrape(self) -> dict[str, Any]:
        pool = ThreadPoolExecutor(max_workers=len(self._sources), thread_name_prefix="ops-scrape")
        futures = {name: pool.submit(self._get, url) for name, url in self._sources.items()}
        # A deadline for the whole answer: a source that trickles bytes must not hold it past the timeout.
        wait(futures.values(), timeout=self._timeout_s + 0.5)
        pool.shutdown(wait=False, cancel_futures=True)
        figures = Figures()
        states: dict[str, str] = {}
        for name, future in futures.items():
            states[name] = figures.add(name, _text(name, future))
        return {"time": round(time.time(), 3), "sources": states, **figures.as_json()}

    def _get(self, url: str) -> str:
        response = self._http.request("GET", url, preload_content=False)
        try:
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")
            return response.read(MAX_BODY_BYTES).decode("utf-8", errors="replace")
        finally:
            response.release_conn()


def _text(source: str, future: Future[str]) -> str | None:
    """The page a source answered, or None (logged: the answer names no host and no error)."""
    if not future.done():
        log.warning("ops: %s did not answer in time", source)
        return None
    if future.exception() is not None:
        log.warning("ops: %s unreachable: %s", source, future.exception())
        return None
    return future.result()


class Figures:
    """The contract's figures summed over every source (several instances of a function add up)."""

    def __init__(self) -> None:
        self.counters: dict[str, Any] = {key: ({} if label else 0) for key, (_, label) in COUNTERS.items()}
        self.gauges: dict[str, Any] = {key: ({} if label else None) for key, (_, label, _how) in GAUGES.items()}
        self.histograms: dict[str, dict[str, Any]] = {key: {"buckets": {}, "count": 0, "sum": 0} for key in HISTOGRAMS}
        self.partitions: dict[tuple[str, str], dict[str, float]] = {}
        self._by_sample = {sample: (key, label) for key, (sample, label) in COUNTERS.items()}
        self._gauge_of = {sample: (key, label, how) for key, (sample, label, how) in GAUGES.items()}
        suffixes = ("_bucket", "_count", "_sum")
        self._histogram_of = {f"{name}{end}": (key, end) for key, name in HISTOGRAMS.items() for end in suffixes}
        self._partition_gauges = {sample: key for key, sample in PARTITION_GAUGES.items()}

    def add(self, source: str, text: str | None) -> str:
        """Adds one source's metrics page; answers the source's state: ok, unreachable or unparseable."""
        if text is None:
            return "unreachable"
        try:
            samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
        except Exception as exc:  # the parser raises ValueError and others on malformed text
            log.warning("ops: %s answered unparseable metrics: %s", source, exc)
            return "unparseable"
        for sample in samples:
            if math.isfinite(sample.value) or sample.labels.get("le") == "+Inf":  # JSON has no NaN or infinity
                self._add_sample(sample.name, sample.labels, sample.value)
        return "ok"

    def _add_sample(self, name: str, labels: Mapping[str, str], value: float) -> None:
        if name in self._by_sample:
            key, label = self._by_sample[name]
            if label is None:
                self.counters[key] += value
            else:
                by_label = self.counters[key]
                by_label[labels.get(label, "")] = by_label.get(labels.get(label, ""), 0) + value
        elif name in self._gauge_of:
            key, label, how = self._gauge_of[name]
            if label is None:
                self.gauges[key] = _combine(how, self.gauges[key], value)
            else:
                by_label = self.gauges[key]
                by_label[labels.get(label, "")] = _combine(how, by_label.get(labels.get(label, "")), value)
        elif name in self._histogram_of:
            key, suffix = self._histogram_of[name]
            histogram = self.histograms[key]
            if suffix == "_bucket":
                buckets = histogram["buckets"]
                buckets[labels.get("le", "")] = buckets.get(labels.get("le", ""), 0) + value
            else:
                histogram[suffix[1:]] += value
        elif name in self._partition_gauges and "topic" in labels and "partition" in labels:
            entry = self.partitions.setdefault((labels["topic"], labels["partition"]), {})
            # Two triggers may both still report a partition during a rebalance: the larger figure is the safe one.
            key = self._partition_gauges[name]
            entry[key] = max(value, entry.get(key, value))

    def as_json(self) -> dict[str, Any]:
        in_order = sorted(self.partitions.items(), key=lambda kv: (kv[0][0], kv[0][1].zfill(12)))  # 2 before 10
        partitions = [
            {"topic": topic, "partition": _number(partition), **{k: _number(v) for k, v in gauges.items()}}
            for (topic, partition), gauges in in_order
        ]
        counters = {
            key: {k: _number(v) for k, v in sorted(value.items())} if isinstance(value, dict) else _number(value)
            for key, value in self.counters.items()
        }
        gauges = {
            key: {k: _number(v) for k, v in sorted(value.items())}
            if isinstance(value, dict)
            else None
            if value is None
            else _number(value)
            for key, value in self.gauges.items()
        }
        histograms = {
            key: {
                # [upper bound, cumulative count] by bound; "+Inf" is the last (JSON has no infinity: null)
                "buckets": [
                    [None if math.isinf(le) else _number(le), _number(count)]
                    for le, count in sorted((float(le), n) for le, n in h["buckets"].items())
                ],
                "count": _number(h["count"]),
                "sum": _number(h["sum"]),
            }
            for key, h in self.histograms.items()
        }
        return {"counters": counters, "gauges": gauges, "histograms": histograms, "partitions": partitions}


def _combine(how: str, current: float | None, value: float) -> float:
    if current is None:
        return value
    return max(current, value) if how == "max" else current + value


def _number(value: float | str) -> float | int | str:
    """Whole numbers as integers (counters and offsets are), others as they are."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number
