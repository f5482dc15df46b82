"""The functions' metrics, under one set of names in both places they run.

Locally each function serves them on ``GET /metrics`` (Prometheus text, prometheus_client). gunicorn runs
several worker processes, so with ``PROMETHEUS_MULTIPROC_DIR`` set (infra/native/function.sh sets it) every
worker writes its figures to files there and a scrape adds them up, whichever worker answers it.
On Lambda there is no server to scrape: the handlers print the same figures as CloudWatch embedded metric
format (Powertools Metrics), a label becoming a dimension.

The adapters count once per batch or request, from the ingest report or the lookup answer: never per record
in the core, which stays free of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from orders_core.config import get_settings
from orders_core.domain.ingest import IngestReport
from orders_core.http.responses import HttpResponse, method_not_allowed

PATH = "/metrics"
_NO_STORE = {"Cache-Control": "no-store"}

# A counter named ``orders_x`` is exposed as ``orders_x_total``: the exposed name is the one used everywhere.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PROMETHEUS: dict[str, Counter | Histogram] = {
    "orders_ingest_records_total": Counter("orders_ingest_records", "Kafka records ingested, by outcome", ["outcome"]),
    "orders_ingest_dead_letters_total": Counter(
        "orders_ingest_dead_letters", "Records sent to the dead-letter queue, by reason", ["reason"]
    ),
    "orders_ingest_batch_seconds": Histogram(
        "orders_ingest_batch_seconds", "Time to ingest one batch (check, store, dead-letter)", buckets=_BATCH_BUCKETS
    ),
    "orders_ingest_invocations_total": Counter("orders_ingest_invocations", "Events delivered to ingest_order"),
    "orders_lookups_total": Counter("orders_lookups", "Orders answered, by the tier that had them", ["tier"]),
    "orders_lookup_responses_total": Counter("orders_lookup_responses", "get_order answers, by status", ["status"]),
    "orders_lookup_seconds": Histogram(
        "orders_lookup_seconds", "Time to answer one get_order request", buckets=_LATENCY_BUCKETS
    ),
    "orders_generated_total": Counter("orders_generated", "Orders produced to Kafka and acknowledged"),
    "orders_generated_invalid_total": Counter(
        "orders_generated_invalid", "Deliberately invalid orders among those produced"
    ),
}


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


def to_prometheus(samples: Sequence[Sample]) -> None:
    """Add the samples to this process's Prometheus metrics (served on /metrics)."""
    for sample in samples:
        key = (sample.name, tuple(sample.labels.items()))
        series = _series.get(key)
        if series is None:
            metric = _PROMETHEUS[sample.name]
            series = _series[key] = metric.labels(**sample.labels) if sample.labels else metric
        if isinstance(series, Histogram):
            series.observe(sample.value)
        else:
            series.inc(sample.value)


def to_emf(function: str) -> Emit:
    """An emitter printing the samples as CloudWatch EMF lines (Lambda sends stdout to CloudWatch Logs)."""

    def emit(samples: Sequence[Sample]) -> None:
        namespace = get_settings().powertools_metrics_namespace
        for sample in samples:
            if sample.value == 0 and not sample.name.endswith("_seconds"):
                continue  # a zero adds nothing to a sum, and costs a log line
            unit = MetricUnit.Seconds if sample.name.endswith("_seconds") else MetricUnit.Count
            with single_metric(
                name=sample.name, unit=unit, value=sample.value, namespace=namespace,
                default_dimensions={"function": function},
            ) as metric:  # fmt: skip
                for name, value in sample.labels.items():
                    metric.add_dimension(name, value)

    return emit


def ingest_samples(report: IngestReport, seconds: float) -> list[Sample]:
    """What one delivered batch adds."""
    outcomes = {
        "stored": report.stored,
        "duplicate": report.duplicates,
        "dead_lettered": report.dead_lettered,
        "failed": len(report.failed),
    }
    return [
        Sample("orders_ingest_invocations_total", 1),
        Sample("orders_ingest_batch_seconds", seconds),
        *(Sample("orders_ingest_records_total", count, {"outcome": outcome}) for outcome, count in outcomes.items()),
        *(
            Sample("orders_ingest_dead_letters_total", count, {"reason": reason})
            for reason, count in report.dead_letter_reasons.items()
        ),
    ]


def lookup_samples(status: int, tier: str | None, seconds: float) -> list[Sample]:
    """What one get_order answer adds; ``tier`` is the cache tier (X-Cache) that had the order, if any."""
    samples = [
        Sample("orders_lookup_responses_total", 1, {"status": str(status)}),
        Sample("orders_lookup_seconds", seconds),
    ]
    if tier:
        samples.append(Sample("orders_lookups_total", 1, {"tier": tier}))
    return samples


LOOKUP_LATENCY_BUCKETS = _LATENCY_BUCKETS


def count_lookup_block(answers: Mapping[tuple[int, str | None], int], latency_buckets: Sequence[int],
                       latency_sum: float) -> None:  # fmt: skip
    """Add many get_order answers at once: counts by (status, tier), and how many took at most each of
    ``LOOKUP_LATENCY_BUCKETS`` (one more for the rest) with their summed seconds. The same series as
    :func:`lookup_samples` feeds, for an adapter that counts in memory and adds up once a second."""
    for (status, tier), count in answers.items():
        to_prometheus([Sample("orders_lookup_responses_total", count, {"status": str(status)})])
        if tier:
            to_prometheus([Sample("orders_lookups_total", count, {"tier": tier})])
    histogram = _PROMETHEUS["orders_lookup_seconds"]
    assert isinstance(histogram, Histogram)
    # Histogram.observe adds to one bucket and to the sum (the exposition makes the buckets cumulative);
    # prometheus_client has no call for many observations at once, so this does the same by the block.
    for index, count in enumerate(latency_buckets):
        if count:
            histogram._buckets[index].inc(count)
    histogram._sum.inc(latency_sum)


def generated_samples(produced: int, invalid: int) -> list[Sample]:
    """What one generator run adds: the orders Kafka acknowledged, and the invalid ones among them."""
    return [Sample("orders_generated_total", produced), Sample("orders_generated_invalid_total", invalid)]


def endpoint(method: str) -> HttpResponse:
    """The answer to ``method`` on ``/metrics``: every worker's figures added up (multiprocess mode), else
    this process's."""
    if method not in ("GET", "HEAD"):
        return method_not_allowed(method, "GET")
    directory = get_settings().prometheus_multiproc_dir
    registry = REGISTRY
    if directory:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return HttpResponse(200, generate_latest(registry), {"Content-Type": CONTENT_TYPE_LATEST, **_NO_STORE})
