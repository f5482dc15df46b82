"""Order cache in two tiers: a small in-process LRU (kept across warm invocations of one instance) in front
of memcached (shared by every instance). Every cache key and value format lives here.

Orders are immutable, so a cached order never goes stale. Unknown uids are remembered in memcached only
(``cache_negative_ttl_s``), so the ingest's write-through replaces them for every instance at once.
A cache failure is never an error: whatever the memcached client raises on a read is a miss (and on a write,
nothing), and memcached calls have short timeouts. Each failed call is counted (``on_error``, by operation), so
a cache that fails quietly still shows on a dashboard. After a failure the client skips the server for
``retry_timeout`` (then ``dead_timeout``) seconds: those skipped calls are misses that reached no server, not
counted; each retry that fails is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.client.rendezvous import RendezvousHash

from orders_core.domain.ports import Tier

log = logging.getLogger(__name__)

KEY_PREFIX = "order:v1:"
# What memcached holds for "no such order": not JSON, so never mistaken for an order.
NEGATIVE = b"-"


class LocalLRU:
    """A thread-safe LRU map bounded in entries and in bytes, whose entries expire after ``ttl_s``.

    Bytes matter as much as entries: an order of 1,000 items is over half a megabyte, so 2,048 such orders
    would hold more than a gigabyte per worker.
    """

    def __init__(self, max_entries: int, ttl_s: float, max_bytes: int) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if expires_at < time.monotonic():
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, value: bytes) -> None:
        if self._max_entries <= 0 or len(value) > self._max_bytes:
            return  # an entry bigger than the whole budget would only evict everything else
        with self._lock:
            self._remove(key)
            self._entries[key] = (time.monotonic() + self._ttl_s, value)
            self._bytes += len(value)
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        """Bytes of order JSON held."""
        return self._bytes


class _SingleServer:
    """HashClient's hasher for one server: skips hashing every key (pure Python, ~15 µs a key)."""

    def __init__(self) -> None:
        self._nodes: list[str] = []

    def add_node(self, node: str) -> None:
        self._nodes.append(node)

    def remove_node(self, node: str) -> None:
        self._nodes.remove(node)

    def get_node(self, key: str) -> str | None:
        return self._nodes[0] if self._nodes else None


def _hash32(text: str, seed: int = 0) -> int:
    """A 32-bit hash of ``text``, the same in every process, computed in C (blake2b, ``seed`` as its salt)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4, salt=seed.to_bytes(8)).digest())


class _Rendezvous(RendezvousHash):  # type: ignore[misc]  # pymemcache ships no types
    """HashClient's hasher for several servers: pymemcache's rendezvous hashing, each score a C hash. Its
    default, murmur3 in pure Python, cost about 9 µs a score, and every key takes one per server: with two
    servers a memcached-tier lookup cost about twice what it did with one."""

    def __init__(self) -> None:
        super().__init__(hash_function=_hash32)


class _Client(HashClient):  # type: ignore[misc]  # pymemcache ships no types
    """pymemcache's HashClient, but a multi-key call on one server goes to it whole. HashClient routes each key
    of a ``get_many`` or ``set_many`` to its server (a key check and a hash lookup a key) even when there is
    one: about 2.5 µs a key here, a quarter of a memcached-tier lookup's client time, and the server's own
    client checks each key again. Its failure handling (retries, then the server marked dead) is kept: the
    call goes through the same ``_safely_run_*``, and with a server marked dead the usual path runs."""

    def _only(self) -> Client | None:
        if len(self.clients) != 1 or self._dead_clients:
            return None
        return next(iter(self.clients.values()))

    def get_many(self, keys: list[str], gets: bool = False, *args: Any, **kwargs: Any) -> dict[str, Any]:
        client = self._only()
        if client is None or not keys:
            return super().get_many(keys, gets, *args, **kwargs)  # type: ignore[no-any-return]
        fetch = client.gets_many if gets else client.get_many
        return self._safely_run_func(client, fetch, {}, keys, *args, **kwargs)  # type: ignore[no-any-return]

    def set_many(self, values: Mapping[str, Any], *args: Any, **kwargs: Any) -> list[str]:
        client = self._only()
        if client is None or not values:
            return super().set_many(values, *args, **kwargs)  # type: ignore[no-any-return]
        return list(self._safely_run_set_many(client, values, *args, **kwargs))


def _server(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host or address, int(port) if port else 11211)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """What the two tiers need: memcached's servers and limits, and the in-process tier's bounds."""

    memcached_server_list: list[str]
    memcached_timeout_s: float
    cache_ttl_s: int
    cache_negative_ttl_s: int
    cache_lru_size: int
    cache_lru_ttl_s: float
    cache_lru_max_bytes: int


class OrderCache:
    """Read-through cache of canonical order JSON by ``order_uid``."""

    def __init__(self, settings: CacheSettings, on_error: Callable[[str], None] | None = None) -> None:
        """``on_error`` is called with the operation (get, get_many, set, add, set_many) of each memcached call
        that failed."""
        self._settings = settings
        self._on_error = on_error
        self.local = LocalLRU(settings.cache_lru_size, settings.cache_lru_ttl_s, settings.cache_lru_max_bytes)
        self._servers = [_server(s) for s in settings.memcached_server_list]
        self._clients = threading.local()

    def _memcached(self) -> HashClient | None:
        """This thread's client: one connection per server per thread, unpooled. A pool's checkout and lock
        cost more than a get's own work here (measured: about 1.7 times a plain client's get), and a thread
        that writes and then reads on one connection reads its own writes (a noreply set on a pooled
        connection could be overtaken by a get on another)."""
        if not self._servers:
            return None
        client: HashClient | None = getattr(self._clients, "client", None)
        if client is None:
            timeout = self._settings.memcached_timeout_s
            client = self._clients.client = _Client(
                self._servers,
                hasher=_SingleServer if len(self._servers) == 1 else _Rendezvous,
                connect_timeout=timeout,
                timeout=timeout,
                no_delay=True,
                use_pooling=False,
                ignore_exc=False,  # raised to us, counted, then taken as a miss (see get and _store)
                retry_attempts=1,
                retry_timeout=1,
                dead_timeout=3,  # try a server that failed again after this many seconds
            )
        return client

    def get(self, order_uid: str) -> tuple[bytes | None, Tier | None]:
        """``(order_json, tier)`` on a hit, ``(None, MEMCACHED)`` when known missing, ``(None, None)``."""
        key = KEY_PREFIX + order_uid
        value = self.local.get(key)
        if value is not None:
            return value, Tier.LOCAL
        client = self._memcached()
        if client is None:
            return None, None
        try:
            value = client.get(key)
        except Exception:  # the network, a dead server, or what pymemcache refuses: a miss
            self._failed("get")
            log.warning("memcached get failed for %r; treated as a miss", key, exc_info=True)
            return None, None
        if value is None:
            return None, None
        if value == NEGATIVE:
            return None, Tier.MEMCACHED
        self.local.put(key, value)
        return value, Tier.MEMCACHED

    def get_local(self, order_uid: str) -> bytes | None:
        """The order when this process's tier holds it; nothing else is asked."""
        return self.local.get(KEY_PREFIX + order_uid)

    def get_many(self, order_uids: list[str]) -> dict[str, tuple[bytes | None, Tier]]:
        """What :meth:`get` answers for each uid a tier knows (missing: neither knows it), asking memcached
        once for all the uids the in-process tier does not hold."""
        found: dict[str, tuple[bytes | None, Tier]] = {}
        remote_keys: dict[str, str] = {}
        for order_uid in order_uids:
            key = KEY_PREFIX + order_uid
            value = self.local.get(key)
            if value is not None:
                found[order_uid] = (value, Tier.LOCAL)
            else:
                remote_keys[key] = order_uid
        client = self._memcached() if remote_keys else None
        if client is None:
            return found
        try:
            values = client.get_many(list(remote_keys))
        except Exception:  # as in get: a cache failure is a miss
            self._failed("get_many")
            log.warning("memcached get_many failed for %d keys; treated as misses", len(remote_keys), exc_info=True)
            return found
        for key, value in values.items():
            if value == NEGATIVE:
                found[remote_keys[key]] = (None, Tier.MEMCACHED)
            elif value is not None:
                self.local.put(key, value)
                found[remote_keys[key]] = (value, Tier.MEMCACHED)
        return found

    def put(self, order_uid: str, order_json: bytes) -> None:
        key = KEY_PREFIX + order_uid
        self.local.put(key, order_json)
        self._store(key, order_json, self._settings.cache_ttl_s)

    def _store(self, key: str, value: bytes, expire: int, replace: bool = True) -> None:
        """``set`` (or ``add`` when not ``replace``); a failure only means a later miss.

        An order read from the database is ``set`` waiting for memcached's reply: it is there before its answer
        leaves, so the next lookup, by whichever worker or thread on its own connection, finds it (sent without
        a reply, it could still be in flight, and that lookup read PostgreSQL again). The round trip is small
        beside the read it follows. A miss is remembered without waiting: nothing depends on finding it."""
        client = self._memcached()
        if client is None:
            return
        try:
            (client.set if replace else client.add)(key, value, expire=expire, noreply=not replace)
        except Exception:  # a cache that cannot take a value only means a later miss
            self._failed("set" if replace else "add")
            log.warning("memcached write failed for %r", key, exc_info=True)

    def _failed(self, operation: str) -> None:
        if self._on_error is not None:
            self._on_error(operation)

    def put_many(self, orders_json: Mapping[str, bytes]) -> None:
        """Write freshly stored orders through to memcached (replacing any negative entry)."""
        client = self._memcached()
        if client is None or not orders_json:
            return
        try:
            client.set_many(
                {KEY_PREFIX + uid: value for uid, value in orders_json.items()},
                expire=self._settings.cache_ttl_s,
                noreply=True,
            )
        except Exception:
            self._failed("set_many")
            raise  # the ingest logs it and goes on (a cache failure never fails a batch)

    def put_missing(self, order_uid: str) -> None:
        """Remember that no such order exists, unless an order was written through meanwhile."""
        # ``add``, not ``set``: the ingest may have written the order through between our database read and now;
        # overwriting it with "missing" would hide a stored order for the negative TTL.
        self._store(KEY_PREFIX + order_uid, NEGATIVE, self._settings.cache_negative_ttl_s, replace=False)

    def health(self) -> str:
        """``ok``, ``disabled`` or ``unreachable``, asking every server directly (not through the dead-server list)."""
        if not self._servers:
            return "disabled"
        timeout = self._settings.memcached_timeout_s
        for server in self._servers:
            probe: Any = Client(server, connect_timeout=timeout, timeout=timeout)
            try:
                probe.version()
            except Exception as exc:
                log.warning("health: memcached %s:%s unreachable: %r", server[0], server[1], exc)
                return "unreachable"
            finally:
                probe.close()
        return "ok"
