"""`make bench`: every benchmark, each on services of its own, figures into bench/results.json."""

from __future__ import annotations

import json
import sys
import time

from bench import bench_coldstart, bench_generate, bench_ingest, bench_lookup, summary
from bench.procs import machine
from bench.results import RESULTS, record_section
from devstack.stack import running


def generate() -> None:
    """The generator needs only Kafka."""
    with running("kafka"):
        sys.argv = ["bench_generate"]
        bench_generate.main()


def main() -> None:
    RESULTS.unlink(missing_ok=True)  # every figure of this run comes from this run
    started = time.monotonic()
    runs = (
        ("lookup", bench_lookup.main),
        ("ingest", bench_ingest.main),
        ("cold start", bench_coldstart.main),
        ("generate", generate),
    )
    for name, run in runs:
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        run()
    record_section("machine", {"end": machine(), "bench_minutes": round((time.monotonic() - started) / 60, 1)})
    print(f"\n=== {RESULTS} (all of it: details, settings, memory) ===")
    print(json.dumps(json.loads(RESULTS.read_text()), indent=2, sort_keys=True))
    print("\n=== as the tables of docs/benchmarks.md ===")
    summary.main()


if __name__ == "__main__":
    main()
