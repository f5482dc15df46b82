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
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import urllib3
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

# Counters the page charts: key in the answer -> (sample name, the label it is broken down by, or None).
COUNTERS: dict[str, tuple[str, str | None]] = {
    "ingest_records": ("orders_ingest_records_total", "outcome"),
    "dead_letters": ("orders_ingest_dead_letters_total", "reason"),
    "ingest_invocations": ("orders_ingest_invocations_total", None),
    "lookups": ("orders_lookups_total", "tier"),
    "lookup_responses": ("orders_lookup_responses_total", "status"),
    "generated": ("orders_generated_total", None),
    "generated_invalid": ("orders_generated_invalid_total", None),
    "trigger_batches": ("orders_trigger_batches_total", "outcome"),
}
# The trigger's gauges, one value per (topic, partition): key in each partition's entry -> sample name.
PARTITION_GAUGES = {
    "lag": "orders_trigger_consumer_lag",
    "committed_offset": "orders_trigger_committed_offset",
    "retrying": "orders_trigger_partition_retrying",
}
MAX_BODY_BYTES = 4 * 1024 * 1024  # a metrics page is a few KiB; a larger one is cut off rather than held in memory
# Answers younger than this are shared: pages polling every few seconds cost the sources one scrape a second at
# most, however many are open (and a flood of /ops cannot become a flood of scrapes).
REUSE_S = 1.0


class MetricsScraper:
    """Scrapes the configured sources concurrently, each within ``timeout_s``; a dead source is reported, never
    fatal. Thread-safe: one scrape at a time, its answer shared for :data:`REUSE_S`. The scrape runs on the
    caller's thread (get_order's PostgreSQL pool in ASGI mode), so other callers never wait for it."""

    def __init__(self, sources: Mapping[str, str], timeout_s: float) -> None:
        self._sources = dict(sources)
        self._timeout_s = timeout_s
        self._http = urllib3.PoolManager(maxsize=2, retries=False, timeout=urllib3.Timeout(total=timeout_s))
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, Any]] | None = None

    def snapshot(self) -> dict[str, Any]:
        """``{"time", "sources": {name: state}, "counters", "partitions"}``, at most :data:`REUSE_S` old, or the
        last one while another thread is scraping (a request never waits behind another's scrape)."""
        last = self._last
        if last is not None and time.monotonic() - last[0] < REUSE_S:
            return last[1]
        if not self._lock.acquire(blocking=last is None):  # only the very first callers wait: there is nothing yet
            assert last is not None
            return last[1]
        try:
            if self._last is last:  # nobody refreshed it while this thread waited
                self._last = (time.monotonic(), self._scrape())
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
        self.partitions: dict[tuple[str, str], dict[str, float]] = {}
        self._by_sample = {sample: (key, label) for key, (sample, label) in COUNTERS.items()}
        self._gauges = {sample: key for key, sample in PARTITION_GAUGES.items()}

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
            if math.isfinite(sample.value):  # JSON has no NaN or infinity
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
        elif name in self._gauges and "topic" in labels and "partition" in labels:
            entry = self.partitions.setdefault((labels["topic"], labels["partition"]), {})
            # Two triggers may both still report a partition during a rebalance: the larger figure is the safe one.
            entry[self._gauges[name]] = max(value, entry.get(self._gauges[name], value))

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
        return {"counters": counters, "partitions": partitions}


def _number(value: float | str) -> float | int | str:
    """Whole numbers as integers (counters and offsets are), others as they are."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() else number
