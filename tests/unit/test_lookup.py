"""The lookup core's three steps with fake adapters: route (no I/O), answer from cache, answer from store."""

from __future__ import annotations

import json

import pytest

from orders_core.config import Settings
from orders_core.http.api import LookupService, Route
from orders_core.http.responses import HttpResponse
from tests.fakes import FakeLookupCache, FakeOrderReader

ORDER = b'{"order_uid":"abc"}'


@pytest.fixture
def store() -> FakeOrderReader:
    reader = FakeOrderReader()
    reader.orders["abc"] = ORDER
    return reader


@pytest.fixture
def cache() -> FakeLookupCache:
    return FakeLookupCache()


@pytest.fixture
def service(store: FakeOrderReader, cache: FakeLookupCache) -> LookupService:
    return LookupService(Settings(cors_allow_origins="http://page"), store, cache)


def get(service: LookupService, path: str) -> HttpResponse:
    return service.handle("GET", path, {}, {"origin": "http://page"})


def test_a_miss_reads_the_store_once_then_the_cache_answers(
    service: LookupService, store: FakeOrderReader, cache: FakeLookupCache
) -> None:
    first, second = get(service, "/orders/abc"), get(service, "/orders/abc")
    assert (first.status, first.body, first.headers["X-Cache"]) == (200, ORDER, "database")
    assert (second.status, second.body, second.headers["X-Cache"]) == (200, ORDER, "memcached")
    assert store.reads == ["abc"]
    assert first.headers["Access-Control-Allow-Origin"] == "http://page"


def test_route_answers_bad_requests_without_touching_cache_or_store(
    service: LookupService, store: FakeOrderReader, cache: FakeLookupCache
) -> None:
    bad_uid = service.route("GET", "/orders/a b", {}, {})
    wrong_method = service.route("DELETE", "/orders/abc", {}, {})
    assert isinstance(bad_uid, HttpResponse) and bad_uid.status == 400
    assert isinstance(wrong_method, HttpResponse) and wrong_method.status == 405
    assert wrong_method.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert service.route("GET", "/orders/abc", {}, {"if-none-match": '"x"'}) == Route("order", None, "abc", '"x"')
    assert store.reads == [] and cache.asked == []


def test_the_cache_step_never_reads_the_store_and_the_store_step_never_asks_the_cache(
    service: LookupService, store: FakeOrderReader, cache: FakeLookupCache
) -> None:
    route = Route("order", order_uid="abc")
    assert service.answer_from_cache(route) is None
    assert service.answer_from_cache(Route("health")) is None  # health always asks PostgreSQL
    assert store.reads == []
    assert service.answer_from_store(route).status == 200
    assert cache.asked == ["abc"]


def test_a_known_miss_is_answered_from_the_cache(service: LookupService, store: FakeOrderReader) -> None:
    assert get(service, "/orders/nope").status == 404
    assert get(service, "/orders/nope").status == 404
    assert store.reads == ["nope"]


def test_store_down_is_503_with_retry_after_and_a_failing_cache_is_a_json_500(
    service: LookupService, store: FakeOrderReader, cache: FakeLookupCache
) -> None:
    """GIVEN the store raising StoreUnavailable, THEN 503 with Retry-After; GIVEN a cache that raises (a bug),
    THEN a JSON 500 that names no exception."""
    store.down = True
    unavailable = get(service, "/orders/abc")
    assert unavailable.status == 503 and unavailable.headers["Retry-After"] == "5"
    cache.broken = True
    failed = get(service, "/orders/abc")
    assert failed.status == 500 and json.loads(failed.body)["error"] == "internal"
    assert b"cache bug" not in failed.body
