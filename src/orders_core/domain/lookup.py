"""The lookup use case: an order by its uid, from the cache tiers first, then the store.

With a read replica, the store read is the replica's; an order the replica does not have yet (replication
lag) is asked of the primary before it is reported missing, so a stored order is never answered 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .ports import OrderLookupCache, OrderReader, Tier


@dataclass(frozen=True, slots=True)
class Found:
    body: bytes  # the order's canonical JSON
    tier: Tier  # where it was found


class Missing:
    """No order has this uid (as far as the tier that says so knows)."""


MISSING: Final = Missing()


class OrderLookup:
    def __init__(self, cache: OrderLookupCache, store: OrderReader, primary: OrderReader | None = None) -> None:
        self._cache = cache
        self._store = store
        self._primary = primary  # set when ``store`` is a replica

    def cached(self, order_uid: str) -> Found | Missing | None:
        """What a cache tier knows of the order (memcached also knows it is missing); None: ask the store."""
        body, tier = self._cache.get(order_uid)
        if body is not None and tier is not None:
            return Found(body, tier)
        return MISSING if tier is Tier.MEMCACHED else None

    def stored(self, order_uid: str) -> Found | Missing:
        """The order from the store, then kept in the caches; raises ``StoreUnavailable``."""
        body = self._store.get_order_json(order_uid)
        if body is None and self._primary is not None:  # not replicated yet, or missing: the primary tells
            body = self._primary.get_order_json(order_uid)
        if body is None:
            self._cache.put_missing(order_uid)
            return MISSING
        self._cache.put(order_uid, body)
        return Found(body, Tier.DATABASE)
