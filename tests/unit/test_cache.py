"""A cache failure is a miss, never an error: whatever the memcached client raises."""

from __future__ import annotations

from typing import Any

import pytest

from orders_core.cache import OrderCache
from orders_core.config import Settings


def cache() -> OrderCache:
    # Nothing listens on port 1: pymemcache's ignore_exc covers that; its own refusals of a key it does not.
    return OrderCache(Settings(memcached_servers="127.0.0.1:1", cache_lru_size=0))


@pytest.mark.parametrize("uid", ["abc\n", "a b", "x" * 300, "\ud800", "caf\u00e9"])
def test_a_key_the_client_refuses_is_a_miss_and_writes_are_skipped(uid: str) -> None:
    orders = cache()
    assert orders.get(uid) == (None, None)
    orders.put(uid, b"{}")
    orders.put_missing(uid)


def test_any_client_exception_on_a_read_is_a_miss(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            def fail(*args: Any, **kwargs: Any) -> None:
                raise RuntimeError("client bug")

            return fail

    orders = cache()
    monkeypatch.setattr(orders, "_memcached", Broken)
    assert orders.get("abc") == (None, None)
    orders.put("abc", b"{}")
    orders.put_missing("abc")
