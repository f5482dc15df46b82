"""Real services for the benchmarks: Postgres, memcached, Kafka and the moto server on free ports, started
with the native runner's scripts (as the tests start them), set up with `orders-setup`."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support import services


@contextmanager
def bench_stack(kafka: bool = True) -> Iterator[tuple[dict[str, str], Path, dict[str, services.Service]]]:
    """Yields ``(env, work_dir, services)``; everything stops and is removed on exit."""
    parent = services.ROOT / ".local" / "bench"
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    work.chmod(0o755)
    started: dict[str, services.Service] = {}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        makers = [services.postgres, services.memcached, services.moto] + ([services.kafka] if kafka else [])
        for make in makers:
            service = make(work).start()
            stack.callback(service.stop)
            started[service.name] = service
        env = {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(started["postgres"].port),
            "MEMCACHED_SERVERS": f"127.0.0.1:{started['memcached'].port}",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{started['aws'].port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "LOG_LEVEL": "WARNING",
        }
        if kafka:
            env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{started['kafka'].port}"
        steps = ["migrate", "queue"] + (["topic"] if kafka else [])
        argv = ["orders-setup", "--wait", "--timeout", "60"] + [arg for s in steps for arg in ("--only", s)]
        services.Service("setup", argv, env, 0, work, ready=lambda: True).start().process.wait()  # type: ignore[union-attr]
        os.environ.update(env)
        yield env, work, started
