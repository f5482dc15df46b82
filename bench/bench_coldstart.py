"""Cold start of each Lambda handler: from a fresh interpreter to its first answer, against a running stack.

For each ``functions/<name>/main.py`` with a ``handler``, three figures, each the median of ``BENCH_ROUNDS``
fresh interpreters (``python -c``, timed by this process from spawn to exit, so the interpreter's own start
is in both):

- ``coldstart_<name>_ms``: import the module (by its path, as the Lambda runtime loads its handler) and answer
  one event: get_order a function URL lookup of a stored order, ingest_order a Kafka event of one new order,
  generate_orders a scheduled event of one order;
- ``coldstart_<name>_deps_ms``: import only the third-party modules that the first one loaded (read from
  ``sys.modules`` after the handler answered, in load order), and nothing else;
- ``coldstart_<name>_vs_deps``: the first over the second, per run; ``coldstart_<name>_cpu_vs_deps`` the same
  ratio of the CPU time the two processes used, which a busy machine moves far less than the wall time.

Usage: ``python -m bench.bench_coldstart``; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid
from typing import Any

from bench.results import record_runs
from devstack import ROOT
from devstack.stack import running
from orders_core.adapters.kafka_event import encode_events
from orders_core.adapters.postgres import OrderStore
from orders_core.config import Settings
from orders_core.domain.model import parse_order
from orders_core.domain.ports import KafkaRecord
from orders_core.generator.builder import iter_orders

# Run in the fresh interpreter: load the handler by path, answer one event, report the third-party modules.
FIRST_ANSWER = r"""
import importlib.util, json, sys
path, event = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location("main", path)
module = importlib.util.module_from_spec(spec)
sys.modules["main"] = module
spec.loader.exec_module(module)
class Context:  # what the Lambda runtime hands a handler
    aws_request_id = "cold-start"
    function_name = "bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "cold-start"
answer = module.handler(event, Context())
third_party = [name for name, m in list(sys.modules.items())
               if (getattr(m, "__file__", None) or "").find("-packages") >= 0
               and not name.startswith(("orders_core", "_distutils_hack"))]
print(json.dumps({"answer": str(answer)[:200], "modules": third_party}))
"""

DEPS_ONLY = r"""
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass  # a module importable only as a side effect of its parent: its parent imported it already
"""


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fresh(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Milliseconds from spawning ``python argv`` to its exit, the CPU milliseconds it used, and what it
    printed. The CPU time hardly moves with the machine's load; the wall time includes every wait."""
    cpu_before, started = _children_cpu_s(), time.perf_counter()
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True, check=False)
    elapsed, cpu = (time.perf_counter() - started) * 1000, (_children_cpu_s() - cpu_before) * 1000
    if done.returncode:
        raise RuntimeError(f"{argv[:2]} failed:\n{done.stderr[-3000:]}")
    return elapsed, cpu, done.stdout


def events(settings: Settings) -> dict[str, Any]:
    """One first event for each handler."""
    stored, new = [parse_order(value) for _uid, value in iter_orders(2, seed=int(time.time()))]
    store = OrderStore(settings)
    store.store_orders([stored])
    store.close()
    record = KafkaRecord(
        topic=settings.kafka_topic,
        partition=0,
        offset=0,
        timestamp=int(time.time() * 1000),
        key=new.order_uid.encode(),
        value=new.canonical_json,
        headers=(),
    )
    _records, kafka_event = next(encode_events([record], settings.kafka_bootstrap_servers, 6_000_000))
    lookup = {
        "version": "2.0",
        "rawPath": f"/orders/{stored.order_uid}",
        "headers": {},
        "requestContext": {"http": {"method": "GET", "path": f"/orders/{stored.order_uid}"}},
    }
    return {"get_order": lookup, "ingest_order": json.loads(kafka_event), "generate_orders": {"count": 1}}


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    with running("postgres", "memcached", "aws", "kafka") as (env, _work, started):
        topic = f"cold-{uuid.uuid4().hex[:6]}"
        settings = Settings(pg_host="127.0.0.1", pg_port=started["postgres"].port, kafka_topic=topic)
        first_events = events(settings)
        # The handlers that answer traffic; provision runs once per deployment, where its cold start costs nothing.
        handlers = sorted(first_events)
        child_env = {**os.environ, **env, "KAFKA_TOPIC": settings.kafka_topic, "PYTHONDONTWRITEBYTECODE": "0"}
        figures: dict[str, list[float]] = {}
        for name in handlers:
            path = str(ROOT / "functions" / name / "main.py")
            fresh(["-c", FIRST_ANSWER, path, json.dumps(first_events[name])], child_env)  # bytecode compiled
            totals, deps, ratios, cpu_ratios = [], [], [], []
            for _ in range(rounds):
                total, total_cpu, out = fresh(["-c", FIRST_ANSWER, path, json.dumps(first_events[name])], child_env)
                modules = json.loads(out.splitlines()[-1])["modules"]
                alone, alone_cpu, _ = fresh(["-c", DEPS_ONLY, json.dumps(modules)], child_env)
                totals.append(total)
                deps.append(alone)
                ratios.append(total / alone)
                cpu_ratios.append(total_cpu / alone_cpu)
            figures |= {
                f"coldstart_{name}_ms": totals,
                f"coldstart_{name}_deps_ms": deps,
                f"coldstart_{name}_vs_deps": ratios,
                f"coldstart_{name}_cpu_vs_deps": cpu_ratios,
            }
            print(
                f"  {name}: first answer {sorted(totals)[len(totals) // 2]:.0f} ms, its third-party imports "
                f"alone {sorted(deps)[len(deps) // 2]:.0f} ms ({len(modules)} modules)"
            )
    record_runs(figures, {"rounds": rounds, "python": sys.version.split()[0], "log_level": env["LOG_LEVEL"]})


if __name__ == "__main__":
    main()
