"""The metrics' contract: requests counted by a bounded route label with the lookup figures for order lookups
only, the dead-letter queue read seldom however often it is scraped, and the ops view's gauges and histograms
summed from real Prometheus text."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

from orders_core.http import metrics
from orders_core.http.ops import Figures


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/orders/abc123", "/orders/{order_uid}"),
        ("/orders/abc123/", "/orders/{order_uid}"),
        ("/orders", "/orders"),
        ("/orders/", "/orders"),
        ("/health", "/health"),
        ("/livez", "/livez"),
        ("/ops", "/ops"),
        ("/metrics", "/metrics"),
        ("/openapi.json", "/openapi.json"),
        ("/", "other"),
        ("/wp-admin/setup.php", "other"),
        ("/" + "x" * 5000, "other"),
    ],
)
def test_every_path_has_one_of_a_few_routes(path: str, route: str) -> None:
    assert metrics.route_of(path) == route


def names(samples: list[metrics.Sample]) -> set[str]:
    return {sample.name for sample in samples}


def test_only_order_lookups_count_as_lookups() -> None:
    lookup = metrics.request_samples("/orders/abc", 200, "local", 0.001)
    assert names(lookup) == {
        metrics.HTTP_REQUESTS,
        metrics.HTTP_REQUEST_SECONDS,
        metrics.LOOKUP_RESPONSES,
        metrics.LOOKUP_SECONDS,
        metrics.LOOKUPS,
    }
    for path in ("/health", "/ops", "/metrics", "/openapi.json", "/livez", "/orders"):
        samples = metrics.request_samples(path, 200, None, 0.001)
        assert names(samples) == {metrics.HTTP_REQUESTS, metrics.HTTP_REQUEST_SECONDS}, path
        assert {sample.labels["route"] for sample in samples} == {path}


def test_the_dead_letter_queue_is_read_at_most_once_per_period_and_a_failure_leaves_the_figures_out() -> None:
    reads: list[int] = []
    answers: list[tuple[int, float | None] | Exception] = [(7, 42.5), RuntimeError("queue unreachable")]

    def read() -> tuple[int, float | None]:
        reads.append(1)
        answer = answers[min(len(reads) - 1, len(answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer

    slow = metrics.DeadLetterQueueCollector(read, max_age_s=3600)
    for _ in range(5):
        text = metrics.endpoint("GET", slow).body.decode()
    assert len(reads) == 1
    assert f"{metrics.DEAD_LETTER_QUEUE_MESSAGES} 7.0" in text
    assert f"{metrics.DEAD_LETTER_QUEUE_OLDEST_SECONDS} 42.5" in text
    every_time = metrics.DeadLetterQueueCollector(read, max_age_s=0)
    answer = metrics.endpoint("GET", every_time)  # the queue fails: the scrape still answers
    assert answer.status == 200 and metrics.DEAD_LETTER_QUEUE_MESSAGES not in answer.body.decode()


def test_the_ops_figures_add_gauges_and_histograms_of_every_source() -> None:
    """GIVEN two get_order workers' and two ingest_orders' metrics WHEN summed THEN queues and connections add
    up, the one dead-letter queue is its largest reading, and histogram buckets add up bound by bound."""
    figures = Figures()
    for queue, connections, letters in ((3, 2, 7), (1, 4, 9)):
        registry = CollectorRegistry()
        Gauge(metrics.LOOKUP_STORE_QUEUE, "q", registry=registry).set(queue)
        Gauge(metrics.POSTGRES_CONNECTIONS, "c", ["pool"], registry=registry).labels("primary").set(connections)
        Gauge(metrics.DEAD_LETTER_QUEUE_MESSAGES, "d", registry=registry).set(letters)
        latency = Histogram(metrics.LOOKUP_SECONDS, "l", buckets=(0.001, 0.01), registry=registry)
        for seconds in (0.0005, 0.005, 0.5):
            latency.observe(seconds)
        assert figures.add("source", generate_latest(registry).decode()) == "ok"
    answer = figures.as_json()
    assert answer["gauges"]["lookup_store_queue"] == 4
    assert answer["gauges"]["postgres_connections"] == {"primary": 6}
    assert answer["gauges"]["dead_letter_queue_messages"] == 9
    assert answer["gauges"]["dead_letter_queue_oldest_age_seconds"] is None  # no source said
    assert answer["histograms"]["lookup_seconds"]["buckets"] == [[0.001, 2], [0.01, 4], [None, 6]]
    assert answer["histograms"]["lookup_seconds"]["count"] == 6
    assert answer["histograms"]["ingest_batch_seconds"] == {"buckets": [], "count": 0, "sum": 0}
