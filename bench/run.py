"""`make bench`: every benchmark, each on services of its own, figures into bench/results.json."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from bench import bench_generate, bench_ingest, bench_lookup
from bench.results import RESULTS
from tests.support import services


def generate() -> None:
    """The generator needs only Kafka."""
    parent = services.ROOT / ".local" / "bench"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="generate-", dir=parent))
    kafka = services.kafka(work).start()
    try:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{kafka.port}"
        sys.argv = ["bench_generate"]
        bench_generate.main()
    finally:
        kafka.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    RESULTS.unlink(missing_ok=True)  # every figure of this run comes from this run
    for name, run in (("lookup", bench_lookup.main), ("ingest", bench_ingest.main), ("generate", generate)):
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        run()
    print(f"\n=== {RESULTS} ===")
    print(json.dumps(json.loads(RESULTS.read_text()), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
