"""Benchmark of the lookup path: each cache tier in-process, then get_order over HTTP under wrk.

Usage: ``python -m bench.bench_lookup [ORDERS]`` (default 10,000). Starts its own PostgreSQL and memcached on
free ports (devstack), seeds ``ORDERS`` generated orders, then

* times ``LookupService.handle`` of ``GET /orders/{uid}`` in-process for each tier: in-process LRU hit,
  memcached hit (LRU of size 0), PostgreSQL miss (both caches empty: the read plus filling both caches);
* starts get_order exactly as the native runner does (infra/native/function.sh) and runs wrk from another
  process (``-t2 -c50 -d10s --latency``, each load after a warm-up): cache hits rotating over every seeded
  uid (more than a worker's LRU holds: the memcached tier), hits over a hot set of 1,000 uids (the
  in-process LRU tier), then a 90/10 mix whose misses are fresh unknown uids (a 404 after one PostgreSQL
  query each, never answered from the negative cache).

Writes the ``lookup_*`` and ``handler_*`` figures into ``bench/results.json``. WORKERS and THREADS pass
through to function.sh; WRK_DURATION (default 10s) and WRK_CONNECTIONS (default 50) size the loads.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymemcache.client.base import Client

from bench.results import percentile, record
from devstack import services
from devstack.stack import running
from orders_core.adapters.cache import OrderCache
from orders_core.adapters.postgres import OrderStore
from orders_core.config import Settings
from orders_core.domain.model import Order
from orders_core.generator.builder import iter_orders
from orders_core.http.api import LookupService
from orders_core.http.responses import HttpResponse

SEED = 20240611
WRK = shutil.which("wrk") or "/usr/bin/wrk"
WRK_THREADS = 2
HOT_SET = 1_000  # uids that fit every worker's in-process LRU (CACHE_LRU_SIZE, 2,048 by default)

# One wrk script for every load: thread k starts at its own offset in the uid list and walks it; with a
# miss ratio of 1/N every N-th request asks for a uid nobody has (run nonce, thread, counter): each one new,
# so each miss reaches PostgreSQL once. done() prints the exact figures as one JSON line.
WRK_SCRIPT = r"""
local counter = 0
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        paths[#paths + 1] = wrk.format("GET", "/orders/" .. line)
    end
    miss_every = tonumber(args[2])
    nonce = args[3]
    i = id * math.floor(#paths / tonumber(args[4]))
end

function request()
    i = i + 1
    if miss_every > 0 and i % miss_every == 0 then
        return wrk.format("GET", "/orders/miss-" .. nonce .. "-" .. id .. "-" .. i)
    end
    return paths[i % #paths + 1]
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
        .. '"non_2xx_3xx": %d, "socket_errors": %d}\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout))
end
"""


# ------------------------------------------------------------------------------------------ set-up


def seed_orders(settings: Settings, count: int) -> list[str]:
    store = OrderStore(settings)
    uids: list[str] = []
    generated = list(iter_orders(count, seed=SEED))
    for start in range(0, len(generated), 500):
        batch = [Order.model_validate_json(value) for _uid, value in generated[start : start + 500]]
        store.store_orders(batch)
        uids.extend(order.order_uid for order in batch)
    store.close()
    return uids


# ------------------------------------------------------------------------------------------ in-process


def time_calls(call: Callable[[str], Any], uids: list[str]) -> list[float]:
    """µs per call, one sample per uid."""
    samples = []
    clock = time.perf_counter_ns
    for uid in uids:
        started = clock()
        call(uid)
        samples.append((clock() - started) / 1000)
    return samples


def flush_memcached(settings: Settings) -> None:
    for server in settings.memcached_server_list:
        host, _, port = server.rpartition(":")
        client = Client((host, int(port)))
        client.flush_all()
        client.close()
    time.sleep(1.1)  # flush_all drops what is older than "now", counted in whole seconds


def get(service: LookupService, uid: str) -> HttpResponse:
    return service.handle("GET", f"/orders/{uid}", {}, {})


def handler_tiers(settings: Settings, uids: list[str]) -> dict[str, list[float]]:
    """In-process ``LookupService.order`` per tier; every answer is checked to come from that tier.

    Leaves every seeded order in memcached, as the HTTP loads expect.
    """
    store, cache = OrderStore(settings), OrderCache(settings)
    service = LookupService(settings, store, cache)
    no_lru = Settings(**{**settings.model_dump(), "cache_lru_size": 0})
    shared_only = LookupService(no_lru, store, OrderCache(no_lru))

    def expect(tier: str, svc: LookupService) -> Callable[[str], Any]:
        def call(uid: str) -> None:
            answer = get(svc, uid)
            if answer.status != 200 or answer.headers["X-Cache"] != tier:
                raise RuntimeError(f"{uid}: {answer.status} from {answer.headers.get('X-Cache')}, expected {tier}")

        return call

    get(service, uids[0])  # connections (PostgreSQL, memcached) made outside the timings
    get(shared_only, uids[0])
    flush_memcached(settings)
    cache.local.clear()
    database = time_calls(expect("database", service), uids)  # PostgreSQL, then filling both caches
    memcached = time_calls(expect("memcached", shared_only), uids)
    hot = uids[: min(len(uids), settings.cache_lru_size)]
    for uid in hot:
        get(service, uid)
    local = time_calls(expect("local", service), hot * max(1, 40_000 // len(hot)))
    store.close()
    return {"lru_hit": local, "memcached_hit": memcached, "db_miss": database}


# ------------------------------------------------------------------------------------------ HTTP


def start_get_order(env: dict[str, str], work: Path) -> services.Service:
    """get_order as the native runner starts it (infra/native/function.sh), once it answers /health."""
    function = services.function("get_order", env, work).start()

    try:
        services.wait_until(lambda: services.answers_ok(f"http://127.0.0.1:{function.port}/health"), 60,
                            "get_order /health")  # fmt: skip
    except TimeoutError:
        function.stop()
        raise
    return function


def wrk(url: str, script: Path, uids_file: Path, miss_every: int, duration: str, connections: int) -> dict[str, Any]:
    argv = [WRK, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{duration}", "--latency", "-s", str(script), url,
            "--", str(uids_file), str(miss_every), uuid.uuid4().hex[:8], str(WRK_THREADS)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((line for line in out.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    if figures["socket_errors"]:
        raise RuntimeError(f"wrk saw {figures['socket_errors']} socket errors:\n{out}")
    return figures


def http_loads(env: dict[str, str], work: Path, uids: list[str], duration: str, connections: int) -> dict[str, Any]:
    """wrk runs against get_order: hits over every seeded uid, hits over a hot set, the 90/10 mix."""
    all_uids, hot_uids = work / "uids.txt", work / "hot-uids.txt"
    all_uids.write_text("\n".join(uids) + "\n")
    hot_uids.write_text("\n".join(uids[:HOT_SET]) + "\n")
    script = work / "lookup.lua"
    script.write_text(WRK_SCRIPT)
    function = start_get_order(env, work)
    url = f"http://127.0.0.1:{function.port}"
    runs: dict[str, Any] = {}
    try:
        with urllib.request.urlopen(f"{url}/orders/{uids[0]}", timeout=5) as check:
            runs["server"] = check.headers.get("server", "?")
        # Each load after a warm-up of its own: connections, every worker's LRU, the PostgreSQL threads.
        wrk(url, script, all_uids, 0, "5s", connections)
        runs["hits"] = wrk(url, script, all_uids, 0, duration, connections)
        wrk(url, script, hot_uids, 0, "3s", connections)
        runs["hot"] = wrk(url, script, hot_uids, 0, duration, connections)
        wrk(url, script, all_uids, 10, "3s", connections)
        runs["mixed"] = wrk(url, script, all_uids, 10, duration, connections)
    finally:
        function.stop()
    for name in ("hits", "hot"):
        if runs[name]["non_2xx_3xx"]:
            raise RuntimeError(f"{runs[name]['non_2xx_3xx']} of the {name} requests were not answered 200")
    share = runs["mixed"]["non_2xx_3xx"] / runs["mixed"]["requests"]
    if not 0.09 <= share <= 0.11:
        raise RuntimeError(f"the mix answered {share:.1%} non-2xx instead of its 10% misses")
    runs["mixed"]["miss_share"] = share
    return runs


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    duration = os.environ.get("WRK_DURATION", "10s")
    connections = int(os.environ.get("WRK_CONNECTIONS", "50"))
    with running("postgres", "memcached") as (env, work, started):
        settings = Settings(pg_host="127.0.0.1", pg_port=started["postgres"].port,
                            memcached_servers=env["MEMCACHED_SERVERS"])  # fmt: skip
        uids = seed_orders(settings, count)
        print(f"{len(uids):,} orders seeded; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}")
        tiers = handler_tiers(settings, uids)
        http = http_loads(env, work, uids, duration, connections)

    p50 = {tier: statistics.median(samples) for tier, samples in tiers.items()}
    speedup = p50["db_miss"] / p50["memcached_hit"]
    print("\nLookupService.handle(GET /orders/{uid}) in-process, µs per call")
    print(f"  {'tier':<16}{'calls':>8}{'p50':>10}{'p99':>10}")
    for tier, samples in tiers.items():
        print(f"  {tier:<16}{len(samples):>8,}{p50[tier]:>10.1f}{percentile(samples, 99):>10.1f}")
    lru_speedup = p50["db_miss"] / p50["lru_hit"]
    print(f"  hit_vs_miss_speedup = db_miss p50 / memcached_hit p50 = {speedup:.1f}x (the shared tier)")
    print(f"  lru_hit_vs_miss_speedup = db_miss p50 / lru_hit p50 = {lru_speedup:.1f}x (in-process, as the original)")

    workers, threads = os.environ.get("WORKERS", "2"), os.environ.get("THREADS", "8")  # function.sh's defaults
    print(
        f"\nget_order over HTTP via infra/native/function.sh (server: {http['server']}, WORKERS={workers}, "
        f"THREADS={threads}); wrk -t{WRK_THREADS} -c{connections} -d{duration}, {os.cpu_count()} CPUs shared"
    )
    print(f"  {'load':<44}{'requests':>10}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}")
    tier = " (memcached tier)" if len(uids) > settings.cache_lru_size else ""  # more than a worker's LRU holds
    loads = (
        (f"hits: {len(uids):,} uids in turn{tier}", http["hits"]),
        (f"hits: {HOT_SET:,} hot uids (in-process LRU tier)", http["hot"]),
        ("mix: 90% hits / 10% new unknown uids (404)", http["mixed"]),
    )
    for name, run in loads:
        print(f"  {name:<44}{run['requests']:>10,}{run['rps']:>9,.0f}{run['p50_us'] / 1000:>8.2f}"
              f"{run['p90_us'] / 1000:>8.2f}{run['p99_us'] / 1000:>8.2f}")  # fmt: skip
    print(f"  misses in the mix: {http['mixed']['miss_share']:.1%} of the answers (404, each uid asked once)")
    met = http["hits"]["rps"] >= 5_000 and http["hits"]["p99_us"] < 20_000
    print(f"  target on hits (>= 5,000 req/s, p99 < 20 ms): {'met' if met else 'NOT met'}")

    hits, hot, mixed = http["hits"], http["hot"], http["mixed"]
    record(
        {
            "lookup_hit_rps": hits["rps"],
            "lookup_hit_p50_ms": hits["p50_us"] / 1000,
            "lookup_hit_p99_ms": hits["p99_us"] / 1000,
            "lookup_hot_hit_rps": hot["rps"],
            "lookup_hot_hit_p99_ms": hot["p99_us"] / 1000,
            "lookup_mixed_rps": mixed["rps"],
            "lookup_mixed_p50_ms": mixed["p50_us"] / 1000,
            "lookup_mixed_p99_ms": mixed["p99_us"] / 1000,
            "handler_lru_hit_us": p50["lru_hit"],
            "handler_memcached_hit_us": p50["memcached_hit"],
            "handler_db_miss_us": p50["db_miss"],
            "hit_vs_miss_speedup": speedup,
            "lru_hit_vs_miss_speedup": lru_speedup,
        }
    )
    print("\nrecorded lookup_* and handler_* figures in bench/results.json")


if __name__ == "__main__":
    main()
