"""Each function's GET /metrics, run as the native runner runs it (gunicorn, two workers): whichever worker
answers the scrape, it shows what every worker counted."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from devstack import ROOT, services
from devstack.stack import drain
from orders_core.config import Settings
from tests.support.events import kafka_event, order_bytes

WORKERS = {"WORKERS": "2"}
Labels = dict[str, str]


def call(url: str, body: dict[str, Any] | None = None) -> int:
    """One request on a connection of its own (so the workers share them out); its status."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status)
    except HTTPError as exc:
        return exc.code


def scraped(base: str, name: str, labels: Labels) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels == labels
    )


def per_worker(service: services.Service, name: str, labels: Labels) -> list[float]:
    """What each worker process counted, from its own file (function.sh's folder for this function and port)."""
    folder = ROOT / ".local" / "metrics" / f"{service.name}-{service.port}"
    return [
        sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)], accumulate=True)
            for sample in metric.samples
            if sample.name == name and sample.labels == labels
        )
        for path in sorted(Path(folder).glob("counter_*.db"))
    ]


def counted_by_both_workers(
    service: services.Service, send: Callable[[], None], name: str, labels: Labels, each: int = 1, before: int = 0
) -> int:
    """Send requests (each adding ``each`` to ``before``), many at once, until both workers counted some; how
    many were sent."""
    base = f"http://127.0.0.1:{service.port}"
    sent = 0
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(8) as pool:
        while sum(1 for value in per_worker(service, name, labels) if value) < 2:
            assert time.monotonic() < deadline, f"one worker took every request: {per_worker(service, name, labels)}"
            list(pool.map(lambda _: send(), range(16)))
            sent += 16
    expected = before + sent * each
    # get_order adds its counts twenty times a second (InvocationBuffer): let the last block land, then each scrape,
    # answered by either worker, must see them all.
    services.wait_until(lambda: scraped(base, name, labels) == expected, 5, f"{name} to reach {expected}", 0.05)
    for _ in range(6):  # each scrape is answered by either worker
        assert scraped(base, name, labels) == expected
    return sent


@pytest.fixture
def running(stack_env: dict[str, str], work_dir: Path) -> Iterator[Callable[..., services.Service]]:
    started: list[services.Service] = []

    def start(name: str, **extra: str) -> services.Service:
        started.append(services.function(name, stack_env, work_dir, {**WORKERS, **extra}).start())
        return started[-1]

    yield start
    for service in started:
        service.stop()


def test_get_order_metrics_add_up_both_workers_and_each_request_logs_its_id(
    running: Callable[..., services.Service], work_dir: Path
) -> None:
    service = running("get_order", LOG_LEVEL="INFO")
    base = f"http://127.0.0.1:{service.port}"
    invocations = work_dir / "get_order-invocations.log"  # where services.function points INVOCATION_LOG
    request = urllib.request.Request(f"{base}/orders/{uuid.uuid4().hex}", headers={"Function-Execution-Id": "probe-1"})
    with pytest.raises(HTTPError):
        urllib.request.urlopen(request, timeout=60)
    # The worker opens its log when it notes its first lookup, after answering it: the file may come a moment later.
    logged = lambda: invocations.exists() and '"request_id":"probe-1"' in invocations.read_text()  # noqa: E731
    services.wait_until(logged, 30, "the request's log line")
    [line] = [json.loads(text) for text in invocations.read_text().splitlines() if '"probe-1"' in text]
    assert (line["function"], line["message"], line["status"]) == ("get_order", "lookup answered", 404)

    def lookup_unknown() -> None:
        assert call(f"{base}/orders/{uuid.uuid4().hex}") == 404

    sent = counted_by_both_workers(service, lookup_unknown, "orders_lookup_responses_total", {"status": "404"}, 1, 1)
    assert scraped(base, "orders_lookup_seconds_count", {}) == sent + 1


def test_ingest_order_metrics_add_up_both_workers(
    running: Callable[..., services.Service], make_order: Callable[..., dict[str, Any]], settings: Settings
) -> None:
    service = running("ingest_order")
    base = f"http://127.0.0.1:{service.port}"
    drain(settings)  # letters other tests left behind

    def ingest_one_and_junk() -> None:
        assert call(base, kafka_event([order_bytes(make_order()), b"\xff junk"])) == 200

    sent = counted_by_both_workers(service, ingest_one_and_junk, "orders_ingest_records_total", {"outcome": "stored"})
    assert scraped(base, "orders_ingest_dead_letters_total", {"reason": "not_utf8"}) == sent
    assert scraped(base, "orders_ingest_invocations_total", {}) == sent
    assert len(drain(settings)) == sent


def test_generate_orders_metrics_add_up_both_workers(
    running: Callable[..., services.Service], kafka_bootstrap: str
) -> None:
    topic = f"test-metrics-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    service = running("generate_orders", KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, KAFKA_TOPIC=topic)
    base = f"http://127.0.0.1:{service.port}"

    def generate_two() -> None:
        assert call(base, {"count": 2, "invalid_ratio": 1.0}) == 200

    sent = counted_by_both_workers(service, generate_two, "orders_generated_total", {}, each=2)
    assert scraped(base, "orders_generated_invalid_total", {}) == 2 * sent
    admin.delete_topics([topic])[topic].result(30)
