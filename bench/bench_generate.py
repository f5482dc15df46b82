"""Benchmark of the test-order generator: build rate (no Kafka) and produce rate onto a real broker.

Usage: ``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m bench.bench_generate [COUNT]`` (default 200,000).
Writes ``generate_orders_per_s`` and ``generate_build_orders_per_s`` into ``bench/results.json``.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

from bench.results import record
from orders_core.config import get_settings
from orders_core.generator.builder import iter_orders
from orders_core.generator.producer import GenerateRequest, produce_orders


def build_rate(count: int, seed: int) -> float:
    list(iter_orders(1_000, seed=seed))  # fill the pools outside the timing (cached per seed)
    started = time.perf_counter()
    size = 0
    for _uid, value in iter_orders(count, seed=seed):
        size += len(value)
    elapsed = time.perf_counter() - started
    print(f"build:   {count:,} orders in {elapsed:.2f} s = {count / elapsed:,.0f}/s ({size / count:,.0f} B avg)")
    return count / elapsed


def produce_rate(count: int, seed: int) -> float:
    settings = get_settings()
    produce_orders(GenerateRequest(count=1_000, seed=seed), settings)  # connect, fetch metadata, fill the pools
    best = 0.0
    for run in range(2):
        result = produce_orders(GenerateRequest(count=count, seed=seed + run + 1), settings)
        print(
            f"produce: {result.produced:,} orders to {settings.kafka_topic!r} in {result.elapsed_s:.2f} s "
            f"= {result.rate:,.0f}/s (all acknowledged, acks=all)"
        )
        best = max(best, result.rate)
    return best


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    os.environ.setdefault("KAFKA_TOPIC", f"bench-generate-{uuid.uuid4().hex[:8]}")
    get_settings.cache_clear()
    settings = get_settings()
    print(f"broker {settings.kafka_bootstrap_servers}, topic {settings.kafka_topic}, {os.cpu_count()} CPUs")
    build = build_rate(count, seed=1)
    produce = produce_rate(count, seed=100)
    record({"generate_orders_per_s": produce, "generate_build_orders_per_s": build})
    print(f"recorded generate_orders_per_s={produce:,.0f} generate_build_orders_per_s={build:,.0f}")


if __name__ == "__main__":
    main()
