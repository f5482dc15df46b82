"""Benchmark of the lookup path: each cache tier in-process, then get_order over HTTP under wrk.

Usage: ``python -m bench.bench_lookup [ORDERS]`` (default 10,000). Starts its own PostgreSQL and memcached on
free ports (devstack), seeds ``ORDERS`` generated orders, then

* times ``LookupService.handle`` of ``GET /orders/{uid}`` in-process for each tier: in-process LRU hit,
  memcached hit (LRU of size 0), PostgreSQL miss (both caches empty: the read plus filling both caches);
* starts get_order exactly as the native runner does (infra/native/function.sh) and runs wrk from another
  process (``-t2 -c50 --latency``, each load after a warm-up, in short slices taken in turn with the other
  loads and the yardstick's, so that a change in the machine's speed touches every load alike): cache hits
  rotating over every seeded
  uid (more than a worker's LRU holds: the memcached tier), hits over a hot set of 1,000 uids (the
  in-process LRU tier), then a 90/10 mix whose misses are fresh unknown uids (a 404 after one PostgreSQL
  query each, never answered from the negative cache).

Writes the ``lookup_*`` and ``handler_*`` figures into ``bench/results.json``. WORKERS and THREADS pass
through to function.sh; WRK_DURATION (a slice, default 1s), WRK_SLICES (a load's slices a round, default 5)
and WRK_CONNECTIONS (default 50) size the loads.
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

from bench.procs import machine, peak_rss_mb
from bench.results import percentile, record, record_runs, record_section
from devstack import ROOT, services
from devstack.stack import running
from orders_core.adapters.cache import OrderCache
from orders_core.adapters.postgres import OrderStore
from orders_core.config import Settings
from orders_core.domain.model import parse_order
from orders_core.generator.builder import iter_orders
from orders_core.http.api import LookupService
from orders_core.http.responses import HttpResponse

SEED = 20240611
# What `make up` runs with that the test stack does not: lookups logged (INFO; the invocation log a file).
AS_MAKE_UP = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}
WRK = shutil.which("wrk") or "/usr/bin/wrk"
WRK_THREADS = 2
HOT_SET = 1_000  # uids that fit every worker's in-process LRU (CACHE_LRU_SIZE, 2,048 by default)

# One wrk script for every load: thread k starts at its own offset in the uid list and walks it; with a
# miss ratio of 1/N every N-th request asks for a uid nobody has (run nonce, thread, counter): each one new,
# so each miss reaches PostgreSQL once. done() prints the exact figures as one JSON line. The mixed load adds
# COUNT_STATUSES: a response() callback (which costs wrk time, so the other loads go without it) counting
# the 200s and 404s, so that only the expected answers are counted.
WRK_SCRIPT = r"""
local counter = 0
local threads = {}
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        paths[#paths + 1] = wrk.format("GET", "/orders/" .. line)
    end
    miss_every = tonumber(args[2])
    nonce = args[3]
    i = id * math.floor(#paths / tonumber(args[4]))
    ok, missing, misses = 0, 0, 0
end

function request()
    i = i + 1
    if miss_every > 0 and i % miss_every == 0 then
        misses = misses + 1
        return wrk.format("GET", "/orders/miss-" .. nonce .. "-" .. id .. "-" .. i)
    end
    return paths[i % #paths + 1]
end
--COUNT_STATUSES--
function done(summary, latency, requests)
    local e = summary.errors
    local ok_total, missing_total, misses_total = 0, 0, 0
    for _, thread in ipairs(threads) do
        ok_total = ok_total + (thread:get("ok") or 0)
        missing_total = missing_total + (thread:get("missing") or 0)
        misses_total = misses_total + (thread:get("misses") or 0)
    end
    io.write(string.format(
        'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, '
        .. '"non_2xx_3xx": %d, "socket_errors": %d, "ok": %d, "not_found": %d, "misses_sent": %d}\n',
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, e.status, e.connect + e.read + e.write + e.timeout,
        ok_total, missing_total, misses_total))
end
"""
COUNT_STATUSES = r"""
function response(status, headers, body)
    if status == 200 then ok = ok + 1 elseif status == 404 then missing = missing + 1 end
end
"""


# ------------------------------------------------------------------------------------------ set-up


def seed_orders(settings: Settings, count: int) -> list[str]:
    store = OrderStore(settings)
    uids: list[str] = []
    generated = list(iter_orders(count, seed=SEED))
    for start in range(0, len(generated), 500):
        batch = [parse_order(value) for _uid, value in generated[start : start + 500]]
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


def start_function(env: dict[str, str], work: Path, extra: dict[str, str] | None = None) -> services.Service:
    """get_order as the native runner starts it (infra/native/function.sh), once it answers; with ``extra``
    (``ASGI_APP``/``APP_DIR``) the same line serves the yardstick instead."""
    function = services.function("get_order", env, work, extra).start()
    try:
        services.wait_until(lambda: services.port_open(function.port), 60, "get_order")
    except TimeoutError:
        function.stop()
        raise
    return function


def wrk(url: str, script: Path, uids_file: Path, miss_every: int, duration: str, connections: int) -> dict[str, Any]:
    argv = [
        WRK,
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{duration}",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        str(uids_file),
        str(miss_every),
        uuid.uuid4().hex[:8],
        str(WRK_THREADS),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next((line for line in out.splitlines() if line.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    figures: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    if figures["socket_errors"]:
        raise RuntimeError(f"wrk saw {figures['socket_errors']} socket errors:\n{out}")
    return figures


class Loads:
    """The wrk loads of one configuration, against a server at ``url``."""

    def __init__(self, work: Path, uids: list[str], duration: str, connections: int) -> None:
        self.all_uids, self.hot_uids = work / "uids.txt", work / "hot-uids.txt"
        self.all_uids.write_text("\n".join(uids) + "\n")
        self.hot_uids.write_text("\n".join(uids[:HOT_SET]) + "\n")
        self.plain, self.counting = work / "lookup.lua", work / "lookup-counting.lua"
        self.plain.write_text(WRK_SCRIPT.replace("--COUNT_STATUSES--", ""))
        self.counting.write_text(WRK_SCRIPT.replace("--COUNT_STATUSES--", COUNT_STATUSES))
        self.duration, self.connections = duration, connections

    def run(self, url: str, load: str, duration: str | None = None) -> dict[str, Any]:
        """One load: ``bare`` or ``hot`` (the hot set), ``hits`` (every uid: the memcached tier), ``mixed``."""
        uids = self.all_uids if load in ("hits", "mixed") else self.hot_uids
        script = self.counting if load == "mixed" else self.plain
        run = wrk(url, script, uids, 10 if load == "mixed" else 0, duration or self.duration, self.connections)
        if load == "mixed":
            answered = run["ok"] + run["not_found"]
            if answered != run["requests"] or abs(run["not_found"] - run["misses_sent"]) > self.connections:
                raise RuntimeError(f"the mix had answers other than its hits and its expected 404s: {run}")
            run["rps"] = answered / (run["duration_us"] / 1e6)  # only the expected answers
            run["miss_share"] = run["not_found"] / answered
        elif run["non_2xx_3xx"]:
            raise RuntimeError(f"{run['non_2xx_3xx']} of the {load} requests were not answered 200")
        return run

    def in_turn(self, urls: dict[str, str], slices: int) -> dict[str, dict[str, Any]]:
        """Each load of ``urls`` (load: its server) in ``slices`` slices, one of each in turn; each load's
        figures from its slices (:func:`combined`)."""
        parts: dict[str, list[dict[str, Any]]] = {load: [] for load in urls}
        for _ in range(slices):
            for load, url in urls.items():
                parts[load].append(self.run(url, load))
        return {load: combined(part) for load, part in parts.items()}


def combined(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One load's figures from its slices: their answers over their time; the median of their percentiles."""
    total = {key: sum(part[key] for part in slices) for key in ("requests", "duration_us", "ok", "not_found")}
    answered = sum(part["rps"] * part["duration_us"] for part in slices) / 1e6  # the mix counts its expected answers
    figures: dict[str, Any] = {**total, "rps": answered / (total["duration_us"] / 1e6), "slices": len(slices)}
    for key in ("p50_us", "p90_us", "p99_us"):
        figures[key] = statistics.median(part[key] for part in slices)
    figures["max_us"] = max(part["max_us"] for part in slices)
    if "miss_share" in slices[0]:
        figures["miss_share"] = total["not_found"] / (total["ok"] + total["not_found"])
    return figures


def http_rounds(
    env: dict[str, str], work: Path, uids: list[str], loads: Loads, rounds: int, slices: int
) -> dict[str, Any]:
    """get_order and the yardstick (the same server line, a fixed body of an order's size), each load run
    ``rounds`` times. Each round takes every load in ``slices`` short slices, in turn (yardstick, hot, hits,
    mixed, then again): the machine's speed here changes within seconds (the same load measured up to 1.5
    times faster from one second to the next), and whole runs of one load after another left one side of a
    ratio in a fast spell and the other in a slow one (one round's hot ratio 0.58, the next 0.79)."""
    function = start_function(env, work)
    url = f"http://127.0.0.1:{function.port}"
    bare: services.Service | None = None
    runs: dict[str, Any] = {"hot": [], "hits": [], "mixed": [], "bare": []}
    try:
        with urllib.request.urlopen(f"{url}/orders/{uids[0]}", timeout=5) as check:
            runs["server"], body_size = check.headers.get("server", "?"), len(check.read())
        bare = start_function(
            env, work, {"ASGI_APP": "bench.bare_asgi:app", "APP_DIR": str(ROOT), "BARE_BODY_BYTES": str(body_size)}
        )
        bare_url = f"http://127.0.0.1:{bare.port}"
        runs["body_bytes"] = body_size
        # Warm-ups: connections, every worker's LRU, the PostgreSQL threads.
        loads.run(url, "hits", "5s")
        loads.run(url, "hot", "3s")
        loads.run(url, "mixed", "3s")
        loads.run(bare_url, "bare", "3s")
        for _ in range(rounds):
            for load, figures in loads.in_turn(
                {"bare": bare_url, "hot": url, "hits": url, "mixed": url}, slices
            ).items():
                runs[load].append(figures)
        runs["rss"] = {"get_order": peak_rss_mb(function), "bare": peak_rss_mb(bare)}
    finally:
        function.stop()
        if bare is not None:
            bare.stop()
    return runs


def put_in(settings: Settings, uids: list[str], source: OrderCache) -> None:
    """Every seeded order into the memcached servers of ``settings`` (copied from another cache's servers)."""
    target = OrderCache(settings)
    for start in range(0, len(uids), 500):
        found = source.get_many(uids[start : start + 500])
        target.put_many({uid: body for uid, (body, _) in found.items() if body is not None})


def scale_out(
    env: dict[str, str], work: Path, uids: list[str], loads: Loads, settings: Settings, slices: int
) -> list[dict[str, Any]]:
    """Lookup req/s with 1, 2 and 4 workers (one memcached), and with one and two memcached servers (2 workers):
    one round each of the hot set and of the memcached tier, ``slices`` slices of each in turn."""
    table: list[dict[str, Any]] = []
    second = services.memcached(work).start()
    try:
        both = f"{env['MEMCACHED_SERVERS']},127.0.0.1:{second.port}"
        no_lru = Settings(**{**settings.model_dump(), "cache_lru_size": 0})
        put_in(Settings(**{**settings.model_dump(), "memcached_servers": both}), uids, OrderCache(no_lru))
        for workers, servers in (
            (1, env["MEMCACHED_SERVERS"]),
            (2, env["MEMCACHED_SERVERS"]),
            (4, env["MEMCACHED_SERVERS"]),
            (2, both),
        ):
            function = start_function({**env, "MEMCACHED_SERVERS": servers}, work, {"WORKERS": str(workers)})
            url = f"http://127.0.0.1:{function.port}"
            try:
                loads.run(url, "hits", "3s")
                figures = loads.in_turn({"hot": url, "hits": url}, slices)
                row = {
                    "workers": workers,
                    "memcached_servers": servers.count(",") + 1,
                    "hot_rps": round(figures["hot"]["rps"]),
                    "memcached_tier_rps": round(figures["hits"]["rps"]),
                }
            finally:
                function.stop()
            print(
                f"  workers {workers}, memcached servers {row['memcached_servers']}: hot {row['hot_rps']:,} req/s, "
                f"memcached tier {row['memcached_tier_rps']:,} req/s"
            )
            table.append(row)
    finally:
        second.stop()
    return table


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    duration = os.environ.get("WRK_DURATION", "1s")
    slices = int(os.environ.get("WRK_SLICES", "5"))
    connections = int(os.environ.get("WRK_CONNECTIONS", "50"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with running("postgres", "memcached") as (env, work, started):
        env = {**env, **AS_MAKE_UP}
        settings = Settings(
            pg_host="127.0.0.1", pg_port=started["postgres"].port, memcached_servers=env["MEMCACHED_SERVERS"]
        )
        uids = seed_orders(settings, count)
        print(f"{len(uids):,} orders seeded; machine {machine()}")
        tiers = handler_tiers(settings, uids)
        loads = Loads(work, uids, duration, connections)
        http = http_rounds(env, work, uids, loads, rounds, slices)
        print(f"\nscale-out ({slices} slices of each load):")
        table = scale_out(env, work, uids, loads, settings, slices)
        rss = {**http["rss"], **{name: peak_rss_mb(started[name]) for name in ("postgres", "memcached")}}

    p50 = {tier: statistics.median(samples) for tier, samples in tiers.items()}
    print("\nLookupService.handle(GET /orders/{uid}) in-process, µs per call")
    print(f"  {'tier':<16}{'calls':>8}{'p50':>10}{'p99':>10}")
    for tier, samples in tiers.items():
        print(f"  {tier:<16}{len(samples):>8,}{p50[tier]:>10.1f}{percentile(samples, 99):>10.1f}")

    workers, threads = env.get("WORKERS", "2"), env.get("THREADS", "8")  # function.sh's defaults
    settings_used = {
        "server": http["server"],
        "workers": int(workers),
        "threads": int(threads),
        "log_level": env["LOG_LEVEL"],
        "invocation_log": "file, written twenty times a second",
        "wrk": f"-t{WRK_THREADS} -c{connections} -d{duration}, {slices} slices a load a round, in turn",
        "orders": len(uids),
        "body_bytes": http["body_bytes"],
        "rounds": rounds,
    }
    print(f"\nget_order over HTTP via infra/native/function.sh ({settings_used}); {rounds} rounds, interleaved")
    print(f"  {'load':<44}{'req/s (runs)':>36}{'p99 ms':>8}")
    names = {
        "bare": f"yardstick: fixed {http['body_bytes']}-byte body",
        "hot": f"hits: {HOT_SET:,} hot uids (LRU)",
        "hits": f"hits: {len(uids):,} uids in turn (memcached)",
        "mixed": "mix: 90% hits / 10% unknown (404)",
    }
    for load, name in names.items():
        rates = ", ".join(f"{run['rps']:,.0f}" for run in http[load])
        p99 = statistics.median(run["p99_us"] for run in http[load]) / 1000
        print(f"  {name:<44}{rates:>36}{p99:>8.2f}")
    bare_rps = [run["rps"] for run in http["bare"]]
    figures = {
        "lookup_vs_bare_server": [h["rps"] / b for h, b in zip(http["hot"], bare_rps, strict=True)],
        "lookup_memcached_vs_bare_server": [h["rps"] / b for h, b in zip(http["hits"], bare_rps, strict=True)],
        "lookup_bare_server_rps": [run["rps"] for run in http["bare"]],
        "lookup_hot_hit_rps": [run["rps"] for run in http["hot"]],
        "lookup_hot_hit_p99_ms": [run["p99_us"] / 1000 for run in http["hot"]],
        "lookup_hit_rps": [run["rps"] for run in http["hits"]],
        "lookup_hit_p50_ms": [run["p50_us"] / 1000 for run in http["hits"]],
        "lookup_hit_p99_ms": [run["p99_us"] / 1000 for run in http["hits"]],
        "lookup_mixed_rps": [run["rps"] for run in http["mixed"]],
        "lookup_mixed_p50_ms": [run["p50_us"] / 1000 for run in http["mixed"]],
        "lookup_mixed_p99_ms": [run["p99_us"] / 1000 for run in http["mixed"]],
    }
    details = record_runs(figures, settings_used)
    for name in ("lookup_vs_bare_server", "lookup_memcached_vs_bare_server"):
        print(
            f"  {name} = {details[name]['median']:.2f} (runs {details[name]['runs']}, "
            f"spread {details[name]['spread_pct']}%)"
        )
    record(
        {
            "handler_lru_hit_us": p50["lru_hit"],
            "handler_memcached_hit_us": p50["memcached_hit"],
            "handler_db_miss_us": p50["db_miss"],
            "hit_vs_miss_speedup": p50["db_miss"] / p50["memcached_hit"],
            "lru_hit_vs_miss_speedup": p50["db_miss"] / p50["lru_hit"],
        }
    )
    record_section("lookup_scale_out", table)
    record_section("peak_rss_mb", {"lookup": rss})
    record_section("machine", {"lookup": machine()})
    print("\nrecorded the lookup_* and handler_* figures in bench/results.json")


if __name__ == "__main__":
    main()
