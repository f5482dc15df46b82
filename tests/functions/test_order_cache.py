"""The shared cache tier against a real memcached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from pymemcache.client.base import Client

from devstack import services
from orders_core.adapters.cache import KEY_PREFIX, OrderCache
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


def test_orders_spread_over_several_servers_and_every_process_finds_each_where_another_put_it(
    settings: Settings, memcached: services.Service, tmp_path: Path
) -> None:
    # GIVEN two memcached servers, and orders written through to them by this process
    second = services.memcached(tmp_path).start()
    try:
        servers = f"127.0.0.1:{memcached.port},127.0.0.1:{second.port}"
        both = Settings(**{**settings.model_dump(), "memcached_servers": servers, "cache_lru_size": 0})
        uids = [uuid.uuid4().hex for _ in range(400)]
        OrderCache(both).put_many({uid: b'{"order_uid":"%s"}' % uid.encode() for uid in uids})
        # THEN each server holds a share of them (once the writes, sent without waiting for replies, are applied)
        readers = [Client(("127.0.0.1", port)) for port in (memcached.port, second.port)]
        keys = [KEY_PREFIX + uid for uid in uids]
        deadline = time.monotonic() + 10
        while sum(shares := [len(reader.get_many(keys)) for reader in readers]) < len(uids):
            assert time.monotonic() < deadline, shares
            time.sleep(0.05)
        assert all(0.3 < share / len(uids) < 0.7 for share in shares), shares
        # AND another process, with other hash seeds, looks each one up on the server it was put on
        child = """if True:
            import json, sys
            from orders_core.adapters.cache import OrderCache
            from orders_core.config import Settings
            found = OrderCache(Settings(cache_lru_size=0)).get_many(json.load(sys.stdin))
            print(sum(1 for body, _ in found.values() if body is not None))"""
        env = {**os.environ, "MEMCACHED_SERVERS": servers, "PYTHONHASHSEED": "12345"}
        run = subprocess.run(
            [sys.executable, "-c", child], input=json.dumps(uids), env=env, capture_output=True, text=True, check=True
        )
        assert int(run.stdout) == len(uids)
    finally:
        second.kill()
