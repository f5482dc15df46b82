"""The cache: a failure is a miss, never an error, whatever the memcached client raises; the in-process tier is
bounded in entries and in bytes, least recently used first out."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from orders_core.adapters.cache import LocalLRU, OrderCache
from orders_core.config import Settings
from orders_core.domain.ports import Tier
from tests.support.events import FIXTURES


def cache(on_error: Callable[[str], None] | None = None, lru_size: int = 0) -> OrderCache:
    # Nothing listens on port 1: every call fails, as when memcached is down.
    return OrderCache(Settings(memcached_servers="127.0.0.1:1", cache_lru_size=lru_size), on_error)


@pytest.mark.parametrize("uid", ["abc\n", "a b", "x" * 300, "\ud800", "caf\u00e9"])
def test_a_key_the_client_refuses_is_a_miss_and_writes_are_skipped(uid: str) -> None:
    failures: Counter[str] = Counter()
    orders = cache(lambda operation: failures.update([operation]), lru_size=16)
    assert orders.get(uid) == (None, None)
    # A miss memcached cannot record is not remembered: the next lookup asks PostgreSQL again
    orders.put_missing(uid)
    assert orders.get(uid) == (None, None)
    # An order memcached cannot take is still kept by the in-process tier
    orders.put(uid, b"{}")
    assert orders.get(uid) == (b"{}", Tier.LOCAL)
    # each read that could not ask and each skipped write counted, none raised (the last read was the local tier's)
    assert failures == Counter({"get": 2, "add": 1, "set": 1})


def test_any_client_exception_is_a_miss_or_a_skipped_write(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> None:
                raise RuntimeError("client bug")

            return fail

    failures: Counter[str] = Counter()
    orders = cache(lambda operation: failures.update([operation]), lru_size=16)
    monkeypatch.setattr(orders, "_memcached", Broken)
    assert orders.get("abc") == (None, None)
    orders.put_missing("abc")
    assert orders.get("abc") == (None, None)
    orders.put("abc", b"{}")
    assert orders.get("abc") == (b"{}", Tier.LOCAL)
    assert failures == Counter({"get": 2, "add": 1, "set": 1})


def test_lru_evicts_least_recently_used_entries_to_stay_within_its_byte_budget() -> None:
    lru = LocalLRU(max_entries=100, ttl_s=60, max_bytes=1000)
    lru.put("a", b"x" * 400)
    lru.put("b", b"x" * 400)
    assert lru.get("a") is not None  # "a" used last: "b" goes first
    lru.put("c", b"x" * 400)
    assert lru.get("b") is None
    assert lru.get("a") is not None and lru.get("c") is not None
    assert lru.size_bytes == 800


def test_lru_never_holds_an_entry_bigger_than_its_whole_budget() -> None:
    lru = LocalLRU(max_entries=100, ttl_s=60, max_bytes=1000)
    lru.put("small", b"x" * 10)
    lru.put("huge", b"x" * 1001)
    assert lru.get("huge") is None
    assert lru.get("small") == b"x" * 10  # and it did not evict the rest to try


def test_lru_replacing_an_entry_counts_its_bytes_once() -> None:
    lru = LocalLRU(max_entries=100, ttl_s=60, max_bytes=1000)
    for _ in range(5):
        lru.put("a", b"x" * 300)
    assert lru.size_bytes == 300 and len(lru) == 1


def test_lru_still_bounds_entries() -> None:
    lru = LocalLRU(max_entries=2, ttl_s=60, max_bytes=10**6)
    for key in "abc":
        lru.put(key, b"v")
    assert lru.get("a") is None and len(lru) == 2


def test_the_in_process_tier_holds_no_more_than_its_byte_budget_under_orders_of_1000_items() -> None:
    """GIVEN the default budget and orders of 1,000 items (about half a megabyte each), WHEN three budgets' worth
    pass through the in-process tier, THEN the memory it holds (traced, not just counted) stays within budget."""
    order = json.loads((FIXTURES / "order.json").read_text())
    order["items"] = [dict(order["items"][0], rid=f"rid-{n:06d}") for n in range(1_000)]
    template = json.dumps(order).encode()
    settings = Settings(memcached_servers="")  # the in-process tier alone, as it stands in front of memcached
    budget = settings.cache_lru_max_bytes
    orders = (3 * budget) // len(template)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tiers = OrderCache(settings)
        for n in range(orders):
            uid = f"big-{n:06d}"
            tiers.put(uid, template.replace(order["order_uid"].encode(), uid.encode(), 1))
            assert tiers.local.size_bytes <= budget
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(tiers.local) < orders and tiers.get(f"big-{orders - 1:06d}")[0] is not None
    assert held <= budget * 1.02  # the orders' bytes, and a little for the map that holds them


def test_each_failed_memcached_call_is_counted_by_operation() -> None:
    """GIVEN memcached down WHEN the cache is read and written THEN each call is a miss or skipped, and each
    failure is counted by operation, so a cache failing quietly still shows."""
    failures: Counter[str] = Counter()

    def count(operation: str) -> None:
        failures[operation] += 1

    # A fresh client each time: after a failure the client skips the server for a while (uncounted: no call).
    assert cache(count).get("abc") == (None, None)
    cache(count).put("abc", b"{}")
    cache(count).put_missing("def")
    assert cache(count).get_many(["abc", "def"]) == {}
    with pytest.raises(OSError):  # the ingest catches whatever its write-through raises
        cache(count).put_many({"abc": b"{}"})
    assert failures == Counter({"get": 1, "set": 1, "add": 1, "get_many": 1, "set_many": 1})


def test_after_a_failed_multi_get_the_down_server_is_skipped_rather_than_asked_again() -> None:
    """GIVEN memcached down WHEN two multi-gets follow each other THEN the first fails (counted) and the second
    is a miss that reaches no server: a dead cache must not cost every lookup a connection attempt."""
    failures: Counter[str] = Counter()
    orders = cache(lambda operation: failures.update([operation]))
    assert orders.get_many(["abc"]) == {}
    assert orders.get_many(["abc", "def"]) == {}
    assert orders.get("abc") == (None, None)
    assert failures == Counter({"get_many": 1})
