"""The in-process tier: bounded in entries and in bytes, oldest use evicted first."""

from __future__ import annotations

from orders_core.cache import LocalLRU


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
