"""Real services for the benchmarks, on free ports, started with the native runner's scripts (as the tests
start them) and set up with `orders-setup`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support import services

MAKERS = {"postgres": services.postgres, "memcached": services.memcached, "aws": services.moto, "kafka": services.kafka}


@contextmanager
def bench_stack(*names: str) -> Iterator[tuple[dict[str, str], Path, dict[str, services.Service]]]:
    """Start the named services (of ``MAKERS``); yields ``(env, work_dir, services)``, its environment also set
    in ``os.environ``. Everything stops and is removed on exit."""
    parent = services.ROOT / ".local" / "bench"  # not /tmp: the postgres user must reach its data directory
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    work.chmod(0o755)
    started: dict[str, services.Service] = {}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        for name in names:
            started[name] = MAKERS[name](work).start()
            stack.callback(started[name].stop)
        env = {"LOG_LEVEL": "WARNING"}
        steps = []
        if "postgres" in started:
            env |= {"PGHOST": "127.0.0.1", "PGPORT": str(started["postgres"].port)}
            steps.append("migrate")
        if "memcached" in started:
            env["MEMCACHED_SERVERS"] = f"127.0.0.1:{started['memcached'].port}"
        if "aws" in started:
            env |= {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{started['aws'].port}", "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test"}  # fmt: skip
            steps.append("queue")
        if "kafka" in started:
            env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{started['kafka'].port}"
            steps.append("topic")
        os.environ.update(env)
        setup = [str(services.VENV_BIN / "orders-setup"), "--wait", "--timeout", "60"]
        subprocess.run(setup + [arg for step in steps for arg in ("--only", step)], check=True)
        yield env, work, started
