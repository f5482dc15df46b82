"""The plain ASGI app's invocation log and counts, written in blocks: each lookup one JSON line with its wall
clock time and duration, and the Prometheus figures of a block the same as those of its answers one by one."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from orders_core.http import metrics
from orders_core.http.asgi import Invocation, InvocationBuffer

ORDER = metrics.ORDER_ROUTE


def invocation(path: str, status: int, tier: str | None, seconds: float, request_id: str | None = None) -> Invocation:
    return (time.perf_counter(), "GET", path, metrics.route_of(path), status, tier, seconds, request_id)


def test_each_lookup_is_one_json_line_with_its_wall_clock_time_and_duration() -> None:
    log = io.StringIO()
    buffer = InvocationBuffer("get_order", log)
    before = datetime.now(UTC)
    buffer.note(invocation("/orders/a", 200, "local", 0.000123, "asked-1"))
    buffer.note(invocation("/orders/b", 404, "memcached", 1.5))
    buffer.note(invocation('/orders/"\nforged', 400, None, 0.0))
    buffer.note(invocation("/health", 200, None, 0.0209999))
    buffer.flush()
    after = datetime.now(UTC)

    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [line["duration_ms"] for line in lines] == [0.123, 1500.0, 0.0, 20.999]
    assert [(line["path"], line["status"], line["tier"]) for line in lines] == [
        ("/orders/a", 200, "local"),
        ("/orders/b", 404, "memcached"),
        ('/orders/"\nforged', 400, None),
        ("/health", 200, None),
    ]
    for line in lines:
        stamp = datetime.strptime(line["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= stamp <= after
        assert (line["level"], line["message"], line["function"], line["method"]) == (
            "INFO",
            "lookup answered",
            "get_order",
            "GET",
        )
    ids = [line["request_id"] for line in lines]
    assert ids[0] == "asked-1" and len(set(ids)) == 4
    assert len(buffer) == 0


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def figures() -> dict[str, float]:
    """The series a lookup block adds to, as exposed."""
    names = {
        "order 200": ("orders_http_requests_total", {"route": ORDER, "status": "200"}),
        "order 404": ("orders_http_requests_total", {"route": ORDER, "status": "404"}),
        "health 200": ("orders_http_requests_total", {"route": "/health", "status": "200"}),
        "lookups 200": ("orders_lookup_responses_total", {"status": "200"}),
        "lookups 404": ("orders_lookup_responses_total", {"status": "404"}),
        "local": ("orders_lookups_total", {"tier": "local"}),
        "memcached": ("orders_lookups_total", {"tier": "memcached"}),
        "lookup count": ("orders_lookup_seconds_count", {}),
        "lookup sum": ("orders_lookup_seconds_sum", {}),
        "lookup <= 1 ms": ("orders_lookup_seconds_bucket", {"le": "0.001"}),
        "lookup <= 5 ms": ("orders_lookup_seconds_bucket", {"le": "0.005"}),
        "order route <= 1 ms": ("orders_http_request_seconds_bucket", {"route": ORDER, "le": "0.001"}),
        "health count": ("orders_http_request_seconds_count", {"route": "/health"}),
        "health <= 0.5 ms": ("orders_http_request_seconds_bucket", {"route": "/health", "le": "0.0005"}),
    }
    return {key: sample(name, **labels) for key, (name, labels) in names.items()}


def test_a_block_adds_to_the_metrics_what_its_answers_would_one_by_one() -> None:
    answers = [
        ("/orders/a", 200, "local", 0.0004),
        ("/orders/b", 200, "local", 0.001),  # on a bucket's bound: counted in it
        ("/orders/c", 200, "memcached", 0.003),
        ("/orders/d", 404, "memcached", 0.0002),
        ("/orders/e", 404, None, 0.02),
        ("/health", 200, None, 0.0003),
    ]
    one_by_one = figures()
    for path, status, tier, seconds in answers:
        metrics.to_prometheus(metrics.request_samples(path, status, tier, seconds))
    added_one_by_one = {key: value - one_by_one[key] for key, value in figures().items()}

    buffer = InvocationBuffer("get_order", None)
    for path, status, tier, seconds in answers:
        buffer.note(invocation(path, status, tier, seconds))
    in_a_block = figures()
    buffer.flush()
    added_in_a_block = {key: value - in_a_block[key] for key, value in figures().items()}

    assert added_in_a_block == pytest.approx(added_one_by_one)  # the sums' last bits depend on the order added
    assert added_in_a_block["lookup <= 1 ms"] == 3 and added_in_a_block["lookup sum"] > 0.0244
