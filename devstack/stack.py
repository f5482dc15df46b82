"""A stack of real services for the tests and the benchmarks: where it runs, the environment that points the
settings at it, its set-up, and the dead-letter queue drained."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from devstack import ROOT
from devstack.services import Service, kafka, memcached, moto, postgres
from orders_core.adapters.letters import decode_letter
from orders_core.bootstrap import dead_letter_mailbox
from orders_core.config import Settings
from orders_local.provision import run as run_setup

MAKERS: dict[str, Callable[[Path], Service]] = {
    "postgres": postgres,
    "memcached": memcached,
    "aws": moto,
    "kafka": kafka,
}


def work_dir(kind: str) -> Path:
    """A fresh folder for one run's services, under the project: not /tmp, which the postgres user (PostgreSQL
    runs as that user when we are root) may not reach. One per run, so that parallel runs share nothing."""
    parent = ROOT / ".local" / kind
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    path.chmod(0o755)
    return path


def environment(started: Mapping[str, Service]) -> dict[str, str]:
    """The settings' environment for these services (by their ``MAKERS`` names); the rest keep their defaults."""
    # /ops scrapes nothing unless a test names its sources: the Procfile's default would reach a running `make up`.
    env = {"LOG_LEVEL": "WARNING", "OPS_METRICS_URLS": ""}
    if "postgres" in started:
        env |= {"PGHOST": "127.0.0.1", "PGPORT": str(started["postgres"].port)}
    if "memcached" in started:
        env["MEMCACHED_SERVERS"] = f"127.0.0.1:{started['memcached'].port}"
    if "aws" in started:
        env |= {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{started['aws'].port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }
    if "kafka" in started:
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{started['kafka'].port}"
    return env


def set_up(started: Mapping[str, Service], settings: Settings) -> None:
    """``orders-setup`` for the services that run: migrations, the dead-letter queue, the topic."""
    wanted = {"postgres": "migrate", "aws": "queue", "kafka": "topic"}
    run_setup(tuple(step for name, step in wanted.items() if name in started), 60.0, settings)


@contextmanager
def running(*names: str, kind: str = "bench") -> Iterator[tuple[dict[str, str], Path, dict[str, Service]]]:
    """Start the named services (of ``MAKERS``) and set them up; yields ``(env, work_dir, services)``, the
    environment also set in ``os.environ``. Everything stops and is removed on exit."""
    work = work_dir(kind)
    started: dict[str, Service] = {}
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        for name in names:
            started[name] = MAKERS[name](work).start()
            stack.callback(started[name].stop)
        env = environment(started)
        os.environ.update(env)
        set_up(started, Settings())
        yield env, work, started


def drain(settings: Settings, visibility_s: int = 30, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every dead letter waiting (in the queue or on the topic of ``DEAD_LETTER_SINK``), removed from it. On SQS, a
    letter received just before the endpoint died is received again after ``visibility_s``. ``into`` is where
    they are added as they come: a caller that goes on after a failure keeps the letters removed before it."""
    mailbox = dead_letter_mailbox(settings, hold_s=visibility_s, wait_s=0)
    bodies: list[dict[str, Any]] = [] if into is None else into
    try:
        while letters := mailbox.receive(10):
            bodies += [decode_letter(letter.body) for letter in letters]
            mailbox.delete(letters)
    finally:
        mailbox.close()
    return bodies
