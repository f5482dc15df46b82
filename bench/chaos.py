"""Chaos run (`make chaos`): a steady stream of orders, about 5 % of them invalid, while the trigger,
``ingest_order``, PostgreSQL, memcached and the Kafka broker are SIGKILLed and restarted at random moments.

At the end, with the topic itself as the truth (a producer may report a failure for a record the broker
kept), it checks that every valid order in the topic is stored exactly once and equal to what was sent,
that every invalid record is in the dead-letter queue (distinct by topic/partition/offset), and that the
trigger's group has committed every partition to its end. Writes ``bench/chaos.json``; exits 1 when
anything was lost or duplicated or a partition was left behind.

Usage: ``CHAOS_S=180 python -m bench.chaos`` (seconds of faults and traffic; ``make chaos`` runs this).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pg8000.native
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from devstack import ROOT, services
from devstack.stack import drain
from orders_core.adapters.kafka_client import client_config
from orders_core.adapters.kafka_records import record_of
from orders_core.adapters.postgres import OrderStore
from orders_core.bootstrap import dead_letter_mailbox
from orders_core.config import Settings
from orders_core.domain.ingest import check_record
from orders_core.domain.model import ValidOrder
from orders_core.domain.ports import KafkaRecord
from orders_core.generator.builder import iter_orders

RESULTS = Path(__file__).resolve().parent / "chaos.json"
RATE = 200  # orders per second: a steady stream, well below what the pipeline takes on two cores
INVALID_RATIO = 0.05
STALL_WARNING_S = 60.0  # reported, not failed: the run's verdict is about records, not speed
TOPIC, GROUP = "orders", "orders-ingest-trigger"
# The AWS endpoint (the dead-letter queue) is `make up`'s: ElasticMQ, which keeps its queue on disk through a
# SIGKILL (a moto server would lose the dead letters themselves).
AWS_ENDPOINT = services.sqs
TARGETS = ("trigger", "ingest_order", "postgres", "memcached", "kafka", "aws")
# The redrive phase: letters of this many refused records are redriven by `orders-dlq` while these are killed.
REDRIVE_LETTERS = 300
REDRIVE_TARGETS = ("trigger", "ingest_order", "kafka", "aws")


@dataclass
class Stack:
    """Every process of the pipeline, each restartable in place (same port, same data directory)."""

    work: Path
    env: dict[str, str]
    processes: dict[str, services.Service] = field(default_factory=dict)

    def settings(self) -> Settings:
        return Settings(
            pg_host="127.0.0.1",
            pg_port=int(self.env["PGPORT"]),
            memcached_servers=self.env["MEMCACHED_SERVERS"],
            kafka_bootstrap_servers=self.env["KAFKA_BOOTSTRAP_SERVERS"],
            kafka_topic=TOPIC,
            kafka_group_id=GROUP,
            aws_endpoint_url=self.env["AWS_ENDPOINT_URL"],
            dlq_queue_name="orders-dlq",
            dlq_queue_url=None,
            dead_letter_sink=self.env["DEAD_LETTER_SINK"],
        )


@contextmanager
def chaos_stack(parent: Path, sink: str = "sqs") -> Iterator[Stack]:
    """Start every service in a fresh folder under ``parent``, set up as ``orders-setup`` does; stop them
    all on exit. This process's own environment is left as it is (a test session shares it)."""
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    work.chmod(0o755)  # the postgres user must reach its data directory
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, work, True)
        stack.callback(keep_logs, work)  # runs after every service stopped
        made = Stack(
            work,
            {
                "LOG_LEVEL": "WARNING",
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "DEAD_LETTER_SINK": sink,
            },
        )
        for name, maker in (
            ("postgres", services.postgres),
            ("memcached", services.memcached),
            ("aws", AWS_ENDPOINT),
            ("kafka", services.kafka),
        ):
            made.processes[name] = maker(work).start()
            stack.callback(made.processes[name].stop)
        ports = {name: service.port for name, service in made.processes.items()}
        made.env |= {
            "PGHOST": "127.0.0.1",
            "PGPORT": str(ports["postgres"]),
            "MEMCACHED_SERVERS": f"127.0.0.1:{ports['memcached']}",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['aws']}",
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports['kafka']}",
            "KAFKA_TOPIC": TOPIC,
            "KAFKA_GROUP_ID": GROUP,
        }
        setup = [str(services.VENV_BIN / "orders-setup"), "--wait", "--timeout", "60"]
        subprocess.run(setup, env={**os.environ, **made.env}, check=True)
        ingest = made.processes["ingest_order"] = services.function("ingest_order", made.env, work).start()
        stack.callback(ingest.stop)
        # Retries capped at 2 s (default 30 s): the run measures recovery, not the longest backoff.
        # A static member of its group, as `make up`'s trigger: restarted after a SIGKILL, it takes its partitions
        # back at once instead of waiting for the killed consumer's session to time out.
        trigger_env = {
            **made.env,
            "INGEST_URL": f"http://127.0.0.1:{ingest.port}/",
            "TRIGGER_RETRY_MAX_S": "2",
            "LOG_LEVEL": "INFO",
            "TRIGGER_INSTANCE_ID": "chaos-trigger",
        }
        trigger = made.processes["trigger"] = services.Service(
            "trigger", ["orders-trigger"], trigger_env, 0, work, ready=lambda: True
        ).start()
        stack.callback(trigger.stop)
        yield made


def keep_logs(work: Path) -> None:
    """Keep the last run's service logs (the work folder itself is removed) for whoever reads a failure."""
    kept = ROOT / ".local" / "chaos-logs"
    shutil.rmtree(kept, ignore_errors=True)
    kept.mkdir(parents=True)
    for log in work.glob("*.log"):
        shutil.copy(log, kept / log.name)


class SteadyProducer(threading.Thread):
    """Produces generated orders (``INVALID_RATIO`` of them invalid) at ``rate`` per second until stopped."""

    def __init__(self, settings: Settings, rate: float) -> None:
        super().__init__(name="steady-producer", daemon=True)
        # A long delivery timeout: records wait in the producer while the broker restarts.
        self.producer = Producer(
            {
                **client_config(settings),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "message.timeout.ms": 600_000,
            }
        )
        self.topic, self.rate = settings.kafka_topic, rate
        self.stopping = threading.Event()
        self.sent = self.failed = 0

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self.failed += 1

    def run(self) -> None:
        started = time.monotonic()
        for index, (uid, value) in enumerate(iter_orders(10**9, invalid_ratio=INVALID_RATIO)):
            if self.stopping.is_set():
                break
            delay = started + index / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                try:
                    self.producer.produce(self.topic, value, uid.encode(), on_delivery=self._delivered)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.sent += 1
            self.producer.poll(0)

    def finish(self, timeout: float) -> int:
        """Stop producing, wait for every delivery report and close the producer (or it keeps reconnecting
        to the broker once it is stopped); returns how many reports are still missing."""
        self.stopping.set()
        self.join()
        unacknowledged = int(self.producer.flush(timeout))
        del self.producer  # the last reference: librdkafka's client is destroyed with it
        return unacknowledged


@dataclass(frozen=True)
class Fault:
    target: str
    killed_at: float  # epoch seconds, the clock of PostgreSQL's ingested_at on this machine
    down_s: float  # from the SIGKILL until the restarted process was ready again


def inject_faults(
    stack: Stack, targets: tuple[str, ...], until: float, rng: random.Random, gap_s: tuple[float, float]
) -> list[Fault]:
    """SIGKILL the targets at random moments until ``until`` (monotonic), one at a time, each restarted on its
    port and data directory after a random pause. Rounds in random order: every target is hit as often, and
    each at least once, however slow the restarts (the first round ends past ``until`` if it must)."""
    faults: list[Fault] = []
    plan: list[str] = []
    while len(faults) < len(targets) or time.monotonic() + gap_s[1] < until:
        time.sleep(rng.uniform(*gap_s))
        if not plan:
            plan = rng.sample(targets, len(targets))
        target = plan.pop()
        service = stack.processes[target]
        service.kill()
        killed_at, down_started = time.time(), time.monotonic()
        time.sleep(rng.uniform(0.0, 2.0))
        try:
            service.start()
        except RuntimeError:  # e.g. a port still held for a moment: one more try, then the run fails
            time.sleep(2.0)
            service.start()
        faults.append(Fault(target, killed_at, time.monotonic() - down_started))
        print(
            f"  {len(faults):3d}. {time.strftime('%H:%M:%S', time.localtime(killed_at))} {target:<12} "
            f"down {faults[-1].down_s:5.1f} s",
            flush=True,
        )
    return faults


def partitions_behind(settings: Settings) -> dict[int, int]:
    """Records not yet committed by the trigger's group, per partition that has any."""
    consumer = Consumer({**client_config(settings), "group.id": settings.kafka_group_id})
    try:
        partitions = [TopicPartition(settings.kafka_topic, p) for p in range(settings.kafka_topic_partitions)]
        committed = consumer.committed(partitions, timeout=10)
        behind = {}
        for tp in committed:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > max(tp.offset, 0):
                behind[tp.partition] = high - max(tp.offset, 0)
        return behind
    finally:
        consumer.close()


def wait_caught_up(settings: Settings, timeout: float) -> dict[int, int]:
    """Wait until no partition is behind (or ``timeout``); returns what is still behind."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            behind = partitions_behind(settings)
        except Exception as exc:  # the broker answering slowly after a restart: ask again
            print(f"  offsets not readable yet: {exc}", flush=True)
            behind = {-1: -1}
        if not behind or time.monotonic() > deadline:
            return behind
        time.sleep(1.0)


def read_topic(settings: Settings) -> list[KafkaRecord]:
    """Every record in the topic, from the first offset to the end of each partition."""
    # The end of a partition may be a transaction's marker (orders-dlq's redrive writes in transactions), which
    # no consumer is handed: the end is where the broker says it is (partition EOF), not the last offset.
    consumer = Consumer(
        {
            **client_config(settings),
            "group.id": "chaos-oracle",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        ends = {}
        for p in range(settings.kafka_topic_partitions):
            ends[p] = consumer.get_watermark_offsets(TopicPartition(settings.kafka_topic, p), timeout=10)[1]
        consumer.assign([TopicPartition(settings.kafka_topic, p, OFFSET_BEGINNING) for p in ends])
        records: list[KafkaRecord] = []
        left = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 300
        while left:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the topic could not be read to its end (partitions {sorted(left)})")
            for message in consumer.consume(num_messages=1000, timeout=5):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    if (message.offset() or 0) >= ends.get(message.partition() or 0, 0):
                        left.discard(message.partition())
                    continue
                if error or message.partition() not in left:
                    continue
                records.append(record_of(message)[0])
                if message.offset() + 1 >= ends[message.partition()]:
                    left.discard(message.partition())
        return records
    finally:
        consumer.close()


class LetterCollector(threading.Thread):
    """Drains the dead-letter queue as the run goes (the queue stays short, the end comes sooner); ``finish``
    drains what is left and returns every letter received."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="letter-collector", daemon=True)
        self.settings = settings
        self.letters: list[dict[str, Any]] = []
        self.stopping = threading.Event()

    def drain(self) -> None:
        # A short visibility: a letter received just before the endpoint died is soon received again. Added as
        # they come: the queue dying between two batches must not take the letters already removed with it.
        drain(self.settings, visibility_s=5, into=self.letters)

    def run(self) -> None:
        while not self.stopping.wait(2.0):
            try:
                self.drain()
            except Exception as exc:  # the endpoint restarting: drain again at the next tick
                print(f"  dead-letter queue not readable: {type(exc).__name__}", flush=True)

    def finish(self) -> list[dict[str, Any]]:
        self.stopping.set()
        self.join()
        self.drain()
        return self.letters


def check_outcomes(
    records: list[KafkaRecord], letters: list[dict[str, Any]], store: OrderStore, stored_uids: set[str]
) -> dict[str, Any]:
    """Compare what the topic holds with what was stored and dead-lettered."""
    valid: dict[KafkaRecord, ValidOrder] = {}
    invalid: set[tuple[str, int, int]] = set()
    for record in records:
        checked = check_record(record)  # the project's own rule for what is valid
        if isinstance(checked, ValidOrder):
            valid[record] = checked
        else:
            invalid.add((record.topic, record.partition, record.offset))
    lettered = {(letter["topic"], letter["partition"], letter["offset"]) for letter in letters}
    with ThreadPoolExecutor(4) as pool:  # OrderStore keeps one connection per thread
        found = dict(
            zip(valid, pool.map(lambda order: store.get_order_json(order.order_uid), valid.values()), strict=True)
        )
    missing = [r for r, order in valid.items() if found[r] is None]
    unequal = [r for r, order in valid.items() if found[r] is not None and found[r] != order.canonical_json]
    undelivered_letters = invalid - lettered
    # A valid record also dead-lettered came out twice (e.g. a redelivery taken for a conflict).
    valid_lettered = [r for r in valid if (r.topic, r.partition, r.offset) in lettered]
    unexpected = stored_uids - {order.order_uid for order in valid.values()}
    for what, where in (
        ("missing", [f"{r.partition}@{r.offset}" for r in missing]),
        ("stored unequal", [f"{r.partition}@{r.offset}" for r in unequal]),
        ("not dead-lettered", [f"{p}@{o}" for _t, p, o in sorted(undelivered_letters)]),
        ("also dead-lettered", [f"{r.partition}@{r.offset}" for r in valid_lettered]),
        ("stored, never produced", sorted(unexpected)),
    ):
        if where:
            print(f"  {what}: {len(where)}, e.g. partition@offset {', '.join(where[:10])}", flush=True)
    return {
        "produced": len(records),
        "valid": len(valid),
        "invalid": len(invalid),
        "stored": len(stored_uids),
        "dead_lettered": len(lettered & invalid),
        "dead_letter_copies": len(letters),
        "lost": len(missing) + len(unequal) + len(undelivered_letters),
        "missing": len(missing),
        "unequal": len(unequal),
        "invalid_not_dead_lettered": len(undelivered_letters),
        "duplicated": len(valid_lettered),
        "stored_not_produced": len(unexpected),
    }


def stored_count(settings: Settings) -> int:
    db = pg8000.native.Connection("orders", password="orders", port=settings.pg_port, database="orders")
    try:
        return int(db.run("SELECT count(*) FROM orders")[0][0])
    finally:
        db.close()


def longest_recovery(faults: list[Fault], stored_at: list[float]) -> float:
    """The longest time from a fault to the first order stored after it."""
    longest = 0.0
    for fault in faults:
        index = bisect.bisect_right(stored_at, fault.killed_at)
        if index < len(stored_at):
            longest = max(longest, stored_at[index] - fault.killed_at)
    return longest


def run_chaos(
    duration_s: float,
    parent: Path,
    seed: int | None = None,
    rate: float = RATE,
    gap_s: tuple[float, float] = (1.0, 4.0),
    catch_up_s: float = 180.0,
    targets: tuple[str, ...] = TARGETS,
    sink: str = "sqs",
    redrive_s: float | None = None,
) -> dict[str, Any]:
    """Run the pipeline under faults for ``duration_s`` and return the figures (see the module docstring)."""
    rng, begun = random.Random(seed), time.monotonic()
    with chaos_stack(parent, sink) as stack:
        settings = stack.settings()
        print(f"chaos: services up in {time.monotonic() - begun:.0f} s", flush=True)
        producer, collector = SteadyProducer(settings, rate), LetterCollector(settings)
        started = time.monotonic()
        producer.start()
        collector.start()
        # Faults begin once orders flow end to end: a fault before the trigger first joins its group proves little.
        services.wait_until(lambda: stored_count(settings) > 0, 120, "the first order stored", 0.2)
        print(f"chaos: {duration_s:.0f} s, {rate:.0f} orders/s, killing {', '.join(targets)}", flush=True)
        # Faults stop a little before the traffic, so each one has orders after it to measure recovery by.
        after_last = min(10.0, duration_s / 5)
        faults = inject_faults(stack, targets, started + duration_s - after_last, rng, gap_s)
        time.sleep(max(started + duration_s - time.monotonic(), after_last))
        unacknowledged = producer.finish(timeout=120)
        traffic_ended = time.monotonic()
        behind = wait_caught_up(settings, catch_up_s)
        caught_up_s = time.monotonic() - traffic_ended
        print(
            f"chaos: {len(faults)} faults; every partition committed {caught_up_s:.0f} s after the traffic"
            if not behind
            else f"chaos: partitions still behind after {caught_up_s:.0f} s: {behind}",
            flush=True,
        )
        figures = account(settings, faults, collector)
        redrive_s = min(60.0, duration_s / 2) if redrive_s is None else redrive_s
        figures |= redrive_under_faults(stack, settings, rng, redrive_s, gap_s, catch_up_s)
    return {
        **figures,
        "faults_injected": len(faults),
        **{f"faults_{target}": sum(f.target == target for f in faults) for target in targets},
        "longest_down_s": round(max((fault.down_s for fault in faults), default=0.0), 1),
        "partitions_behind": len(behind),
        "catch_up_s": round(caught_up_s, 1),
        "producer_delivery_failures": producer.failed,
        "producer_unacknowledged": unacknowledged,
        "duration_s": duration_s,
    }


def account(settings: Settings, faults: list[Fault], collector: LetterCollector) -> dict[str, Any]:
    """Every record of the topic against the store and the dead-letter queue, and how fast ingest recovered."""
    began = time.monotonic()
    records = read_topic(settings)
    read_at = time.monotonic()
    letters = collector.finish()
    drained_at = time.monotonic()
    db = pg8000.native.Connection("orders", password="orders", port=settings.pg_port, database="orders")
    rows = db.run("SELECT order_uid, extract(epoch FROM ingested_at)::float8 FROM orders ORDER BY 2")
    db.close()
    store = OrderStore(settings)
    figures = check_outcomes(records, letters, store, {row[0] for row in rows})
    store.close()
    stored_at = [row[1] for row in rows]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stored_at)]
    print(
        f"chaos: {len(records)} records read in {read_at - began:.0f} s, {len(letters)} letters drained in "
        f"{drained_at - read_at:.0f} s, {len(rows)} orders compared in {time.monotonic() - drained_at:.0f} s",
        flush=True,
    )
    return {
        **figures,
        "longest_fault_to_stored_s": round(longest_recovery(faults, stored_at), 1),
        "longest_without_stored_s": round(max(gaps, default=0.0), 1),
    }


# ----------------------------------------------------------------------------------------------- redrive phase


def orders_dlq(stack: Stack, *args: str) -> tuple[int, dict[str, Any]]:
    """One run of `orders-dlq` against the stack, as an operator runs it: its exit code and its JSON answer."""
    done = subprocess.run(
        [str(services.VENV_BIN / "orders-dlq"), "--hold-s", "10", *args],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        return done.returncode or 1, {"error": done.stderr.strip().splitlines()[-1:] or ["no output"]}


def letters_waiting(settings: Settings) -> int:
    mailbox = dead_letter_mailbox(settings, wait_s=0)
    try:
        return mailbox.size()
    finally:
        mailbox.close()


def redrive_under_faults(
    stack: Stack,
    settings: Settings,
    rng: random.Random,
    duration_s: float,
    gap_s: tuple[float, float],
    catch_up_s: float,
) -> dict[str, Any]:
    """Refused records dead-lettered, then redriven by `orders-dlq` (run again and again, as an operator would
    after a failed run) while the trigger, ingest_order, Kafka and the dead-letter endpoint are SIGKILLed. The
    ingest refuses the copies again, and `--max-redrives 1` leaves their letters alone. Every record must be
    in the topic exactly twice afterwards: once as written, once redriven."""
    marker = f"redrive-probe-{rng.randrange(10**9)}"
    probes = [f'{{"{marker}": {i}}}'.encode() for i in range(REDRIVE_LETTERS)]  # JSON, not an order: invalid
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap_servers, "enable.idempotence": True})
    for index, value in enumerate(probes):
        producer.produce(settings.kafka_topic, value, f"probe-{index}".encode())
    assert producer.flush(60) == 0
    del producer
    services.wait_until(lambda: letters_waiting(settings) >= REDRIVE_LETTERS, catch_up_s, "the probes' letters", 1)
    print(
        f"chaos: redriving {REDRIVE_LETTERS} letters for {duration_s:.0f} s, killing {', '.join(REDRIVE_TARGETS)}",
        flush=True,
    )
    faults: list[Fault] = []
    injector = threading.Thread(
        target=lambda: faults.extend(inject_faults(stack, REDRIVE_TARGETS, time.monotonic() + duration_s, rng, gap_s)),
        daemon=True,
    )
    injector.start()
    runs = failed_runs = 0
    last_failure = time.monotonic()
    # Until a clean run redrives nothing more, once the faults are over and the letters a failed run held (10 s,
    # --hold-s) are back in view.
    while runs < 200:
        faulting = injector.is_alive()
        code, answer = orders_dlq(stack, "redrive", "--max-redrives", "1")
        runs += 1
        if code != 0:
            failed_runs += 1
            last_failure = time.monotonic()
        elif (
            not faulting
            and time.monotonic() - last_failure > 12
            and not (answer.get("redriven") or answer.get("already_redriven"))
        ):
            break
        time.sleep(0.5)
    injector.join()
    # Not waiting for the trigger: what is checked is the topic and the letters, both settled by the runs. (A
    # partition the redrive wrote to ends with a transaction marker, which no consumer commits past.)
    probe_values = set(probes)
    written = [record for record in read_topic(settings) if record.value in probe_values]
    copies = Counter(record.value for record in written)
    # The letters of the records first refused must all be gone (redriven, or copies of one redriven): one left
    # is a letter a run lost track of. The copies' own letters stay (--max-redrives 1 leaves them alone).
    first_written = {
        (record.partition, record.offset)
        for record in written
        if copies[record.value] and record.offset == min(r.offset for r in written if r.value == record.value)
    }
    left = [letter for letter in drain(settings) if (letter.get("partition"), letter.get("offset")) in first_written]
    figures = {
        "redrive_letters": REDRIVE_LETTERS,
        "redrive_runs": runs,
        "redrive_failed_runs": failed_runs,
        "redrive_faults": len(faults),
        "redrive_lost": sum(copies.get(value, 0) < 2 for value in probes),
        "redrive_twice": sum(copies.get(value, 0) > 2 for value in probes),
        "redrive_letters_left": len(left),
    }
    print(f"chaos: redrive phase: {figures}", flush=True)
    return figures


def passed(figures: dict[str, Any]) -> bool:
    return not (
        figures["lost"]
        or figures["duplicated"]
        or figures["stored_not_produced"]
        or figures["partitions_behind"]
        or figures["redrive_lost"]
        or figures["redrive_twice"]
        or figures["redrive_letters_left"]
    )


def main() -> int:
    duration_s = float(os.environ.get("CHAOS_S", "180"))
    # CHAOS_DLQ: where the dead letters go in the run (sqs or kafka), DEAD_LETTER_SINK's two destinations.
    figures = run_chaos(duration_s, ROOT / ".local" / "chaos", sink=os.environ.get("CHAOS_DLQ", "sqs"))
    RESULTS.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2, sort_keys=True))
    ok = passed(figures)
    if figures["longest_without_stored_s"] > STALL_WARNING_S:
        print(f"chaos: warning: no order was stored for {figures['longest_without_stored_s']:.0f} s at a stretch")
    print(
        f"chaos: {'PASS' if ok else 'FAIL'} (figures in {RESULTS.relative_to(ROOT)}; service logs in .local/chaos-logs)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
