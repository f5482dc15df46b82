"""The shared cache tier against a real memcached."""

from __future__ import annotations

import uuid

from orders_core.adapters.cache import OrderCache
from orders_core.config import Settings
from orders_core.domain.ports import Tier


def test_a_negative_entry_never_hides_an_order_written_through_meanwhile(settings: Settings) -> None:
    # GIVEN a lookup that found nothing in PostgreSQL, and the ingest storing and writing the order through
    # before that lookup records "missing"
    cache = OrderCache(settings)
    uid = uuid.uuid4().hex
    cache.put_many({uid: b'{"order_uid":"%s"}' % uid.encode()})
    # WHEN the lookup records the miss
    cache.put_missing(uid)
    # THEN the order is still found in memcached (writes are noreply: read back on the same connection, which
    # memcached answers in order)
    assert cache.get(uid) == (b'{"order_uid":"%s"}' % uid.encode(), Tier.MEMCACHED)


def test_an_unknown_order_is_remembered_as_missing(settings: Settings) -> None:
    cache = OrderCache(settings)
    uid = uuid.uuid4().hex
    cache.put_missing(uid)
    assert cache.get(uid) == (None, Tier.MEMCACHED)
