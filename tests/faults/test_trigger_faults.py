"""The trigger against real Kafka, as a real process, in front of an ingest stand-in that misbehaves on cue.

What must hold whatever the stand-in answers: the committed offset of a partition never passes a record
that the stand-in did not take (stored or dead-lettered, and said so in a partial batch response naming
records of the batch); every record is eventually taken; one partition's trouble never holds up another.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from devstack import services
from orders_core.adapters.kafka_dlq import ensure_topics
from orders_core.adapters.kafka_event import decode_event
from orders_core.adapters.letters import decode_letter
from orders_core.config import Settings
from orders_core.domain.ports import KafkaRecord
from orders_local.provision import ensure_topic
from tests.support.topics import topic_values

PARTITIONS = 3
REQUEST_TIMEOUT_S = 2


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay_s: float = 0.0
    took: list[KafkaRecord] = field(default_factory=list)  # what the answer tells the trigger was taken
    hold: threading.Event | None = None  # answer only once it is set: an invocation in flight for as long as needed


Answer = Callable[[list[KafkaRecord]], Reply]


def take_all_but(failing: Callable[[KafkaRecord], bool] = lambda _: False) -> Answer:
    """A correct ingest: the records ``failing`` picks fail, the others are taken."""

    def answer(records: list[KafkaRecord]) -> Reply:
        failed = [r for r in records if failing(r)]
        body = {"batchItemFailures": [{"itemIdentifier": r.item_identifier} for r in failed]}
        return Reply(200, json.dumps(body).encode(), took=[r for r in records if r not in failed])

    return answer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the trigger gave up waiting (a timeout on purpose): the answer has nowhere to go


class StandIn:
    """A tiny ingest function over HTTP: it answers what ``answer`` says, and remembers what it took."""

    def __init__(self) -> None:
        self.answer: Answer = take_all_but()
        self.taken: dict[int, set[int]] = defaultdict(set)
        self.calls: list[tuple[int, int, int, int]] = []  # partition, first offset, records, event bytes
        self.execution_ids: list[str] = []  # each invocation's Function-Execution-Id header
        self.lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                records = decode_event(json.loads(body))
                with stand_in.lock:
                    stand_in.calls.append((records[0].partition, records[0].offset, len(records), len(body)))
                    stand_in.execution_ids.append(self.headers.get("Function-Execution-Id", ""))
                    reply = stand_in.answer(records)
                time.sleep(reply.delay_s)
                if reply.hold is not None:
                    reply.hold.wait(60)
                if reply.delay_s < REQUEST_TIMEOUT_S:
                    with stand_in.lock:
                        for record in reply.took:
                            stand_in.taken[record.partition].add(record.offset)
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def frontier(self, partition: int) -> int:
        """The first offset of the partition not taken: nothing at or past it may be committed."""
        with self.lock:
            taken, offset = self.taken[partition], 0
            while offset in taken:
                offset += 1
            return offset

    def calls_from(self, partition: int, offset: int) -> int:
        with self.lock:
            return sum(1 for p, first, _, _ in self.calls if (p, first) == (partition, offset))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Rig:
    """One test's topic and consumer group, the stand-in, triggers as processes, and a watch that checks,
    all along, that no committed offset passes a record the stand-in did not take."""

    def __init__(self, bootstrap: str, work_dir: Path, **settings: str) -> None:
        self.topic = f"faults-{uuid.uuid4().hex[:8]}"
        self.stand_in = StandIn()
        self.work_dir = work_dir
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": self.topic,
            "KAFKA_GROUP_ID": f"trigger-{self.topic}",
            "INGEST_URL": self.stand_in.url,
            "TRIGGER_BATCH_SIZE": "10",
            "TRIGGER_BATCH_WINDOW_S": "0.05",
            "TRIGGER_RETRY_INITIAL_S": "0.1",
            "TRIGGER_RETRY_MAX_S": "0.5",
            "TRIGGER_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "LOG_LEVEL": "INFO",
            **settings,
        }
        ensure_topic(Settings(kafka_bootstrap_servers=bootstrap, kafka_topic=self.topic, kafka_topic_partitions=3))
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
        self.offsets = Consumer({"bootstrap.servers": bootstrap, "group.id": self.env["KAFKA_GROUP_ID"]})
        self._offsets_lock = threading.Lock()
        self.triggers: list[services.Service] = []
        self.produced: dict[int, int] = defaultdict(int)
        self.violations: list[str] = []
        self._watching = threading.Event()
        self._watch = threading.Thread(target=self._watch_commits, daemon=True)
        self._watch.start()

    def trigger(self) -> services.Service:
        """A new trigger process in the group, started."""
        name = f"trigger-{self.topic}-{len(self.triggers)}"
        service = services.trigger(self.env, self.work_dir, name)
        self.triggers.append(service.start())
        return service

    def produce(self, partition: int, count: int, size: int = 100) -> None:
        for _ in range(count):
            self.producer.produce(self.topic, value=b"x" * size, partition=partition)
            self.produced[partition] += 1
        assert self.producer.flush(30) == 0

    def committed(self) -> dict[int, int]:
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        with self._offsets_lock:
            answer = self.offsets.committed(partitions, timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in answer}

    def _watch_commits(self) -> None:
        while not self._watching.wait(0.2):
            try:
                committed = self.committed()
            except KafkaException:  # e.g. the group coordinator moving: ask again
                continue
            for partition, offset in committed.items():  # the frontier is read after: it only grows
                if offset > (frontier := self.stand_in.frontier(partition)):
                    self.violations.append(f"partition {partition} committed {offset}, first not taken {frontier}")

    def wait_committed(self, expected: dict[int, int], timeout: float = 45) -> None:
        def reached() -> bool:
            try:
                committed = self.committed()
            except KafkaException:  # e.g. the group coordinator still loading on a fresh broker: ask again
                return False
            return all(committed[p] == offset for p, offset in expected.items())

        services.wait_until(reached, timeout, f"offsets {expected} committed", 0.2)

    def wait_everything_committed(self) -> None:
        self.wait_committed(dict(self.produced))
        for partition, count in self.produced.items():
            assert self.stand_in.frontier(partition) >= count, f"partition {partition}: a record was never taken"

    def close(self) -> None:
        for trigger in self.triggers:
            trigger.stop()
        self._watching.set()
        self._watch.join()
        self.offsets.close()
        self.stand_in.close()


@pytest.fixture
def rig(kafka_bootstrap: str, work_dir: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(**settings: str) -> Rig:
        made.append(Rig(kafka_bootstrap, work_dir, **settings))
        return made[-1]

    yield make
    for each in made:
        each.close()
    for each in made:
        assert each.violations == [], each.violations


def bad(kind: str) -> Answer:
    """An ingest that misbehaves one way: whatever it stored, its answer must not let anything be committed."""

    def answer(records: list[KafkaRecord]) -> Reply:
        bodies: dict[str, Any] = {
            "empty object": {},
            "null": None,
            "list": [],
            "null failures": {"batchItemFailures": None},
            "unknown ids": {"batchItemFailures": [{"itemIdentifier": {"partition": "elsewhere-0", "offset": 9}}]},
            "string ids": {"batchItemFailures": [{"itemIdentifier": records[0].label}]},
        }
        if kind in bodies:
            return Reply(200, json.dumps(bodies[kind]).encode())
        if kind == "not json":
            return Reply(200, b"<html>OK</html>")
        if kind == "500":
            return Reply(500, b'{"batchItemFailures": []}')
        assert kind == "timeout after storing"
        return Reply(200, b'{"batchItemFailures": []}', delay_s=REQUEST_TIMEOUT_S + 1)

    return answer


@pytest.mark.parametrize(
    "kind",
    [
        "empty object",
        "null",
        "list",
        "null failures",
        "unknown ids",
        "string ids",
        "not json",
        "500",
        "timeout after storing",
    ],
)
def test_an_answer_that_is_not_a_partial_batch_response_commits_nothing(rig: Callable[..., Rig], kind: str) -> None:
    """GIVEN an ingest stand-in answering `kind` WHEN it gets a batch THEN the trigger retries the same batch
    and commits nothing; once it answers properly everything is committed."""
    r = rig()
    r.stand_in.answer = bad(kind)
    r.produce(partition=0, count=10)
    r.trigger()
    services.wait_until(lambda: r.stand_in.calls_from(0, 0) >= 3, 45, "the batch retried")
    assert r.committed()[0] == 0
    r.stand_in.answer = take_all_but()
    r.wait_everything_committed()


def test_a_poisoned_partition_never_holds_up_the_others(rig: Callable[..., Rig]) -> None:
    """GIVEN the stand-in failing every record of partition 1 WHEN all three partitions carry records THEN
    partitions 0 and 2 are delivered and committed to the end while partition 1 stays at 0; once the
    poison is gone partition 1 catches up."""
    r = rig()
    poisoned = threading.Event()
    poisoned.set()
    r.stand_in.answer = take_all_but(lambda record: poisoned.is_set() and record.partition == 1)
    for partition in range(PARTITIONS):
        r.produce(partition, 100)
    r.trigger()
    r.wait_committed({0: 100, 2: 100})
    r.produce(0, 50)
    r.produce(2, 50)
    r.wait_committed({0: 150, 2: 150})
    assert r.committed()[1] == 0 and r.stand_in.calls_from(1, 0) >= 2
    poisoned.clear()
    r.wait_everything_committed()


def test_a_trigger_joining_while_a_partition_retries_loses_nothing(rig: Callable[..., Rig]) -> None:
    """GIVEN partition 0 failing at offset 5 WHEN a second trigger joins the group (a rebalance mid-retry)
    THEN partition 0 stays committed at 5 across it, the other partitions keep going, and once the record
    is taken everything is committed, nothing skipped."""
    r = rig()
    failing = threading.Event()
    failing.set()
    r.stand_in.answer = take_all_but(lambda record: failing.is_set() and (record.partition, record.offset) == (0, 5))
    for partition in range(PARTITIONS):
        r.produce(partition, 50)
    first = r.trigger()
    r.wait_committed({0: 5, 1: 50, 2: 50})
    second = r.trigger()
    services.wait_until(lambda: "assigned [" in second.log_tail(100), 45, "the second trigger assigned")
    services.wait_until(lambda: "revoked" in first.log_tail(200), 45, "the first trigger rebalanced")
    for partition in range(PARTITIONS):
        r.produce(partition, 50)
    r.wait_committed({1: 100, 2: 100})
    assert r.committed()[0] == 5
    failing.clear()
    r.wait_everything_committed()


def test_sigterm_during_backoff_exits_at_once_and_leaves_the_group(rig: Callable[..., Rig]) -> None:
    """GIVEN a trigger waiting out a long backoff after offset 3 of partition 0 failed WHEN it gets SIGTERM
    THEN it exits 0 within seconds having committed 3 (not past the failure), and a restarted trigger gets
    the partitions at once (it left the group: no waiting out the 45 s session timeout)."""
    r = rig(TRIGGER_RETRY_INITIAL_S="60", TRIGGER_RETRY_MAX_S="60")
    failing = threading.Event()
    failing.set()
    r.stand_in.answer = take_all_but(lambda record: failing.is_set() and (record.partition, record.offset) == (0, 3))
    r.produce(0, 10)
    trigger = r.trigger()
    services.wait_until(lambda: f"retrying {r.topic}-0@3" in trigger.log_tail(50), 45, "the trigger in backoff")
    assert trigger.process is not None
    stopped_at = time.monotonic()
    trigger.process.send_signal(signal.SIGTERM)
    assert trigger.process.wait(20) == 0
    assert time.monotonic() - stopped_at < 15  # not the 60 s backoff
    trigger.process = None
    assert r.committed()[0] == 3
    started_at = time.monotonic()
    restarted = r.trigger()
    services.wait_until(lambda: "assigned [" in restarted.log_tail(100), 40, "the restarted trigger assigned")
    assert time.monotonic() - started_at < 30  # a member that vanished without leaving holds it ~45 s
    services.wait_until(lambda: r.stand_in.calls_from(0, 3) >= 1, 30, "offset 3 delivered again")
    failing.clear()
    restarted.stop()
    r.env["TRIGGER_RETRY_INITIAL_S"] = "0.1"
    r.trigger()
    r.wait_everything_committed()


def test_events_stay_within_the_size_limit_and_a_record_over_it_alone_is_dead_lettered_not_retried_forever(
    rig: Callable[..., Rig], kafka_bootstrap: str
) -> None:
    """GIVEN a 20,000-byte event limit WHEN a partition carries 3 KB records and one of 40 KB THEN every event
    stays within the limit, the 40 KB record (which no invocation could carry) is dead-lettered by the trigger as
    ``too_large`` with its bytes' digest, and every record behind it is delivered and committed."""
    letters_topic = f"letters-{uuid.uuid4().hex[:8]}"
    r = rig(
        TRIGGER_MAX_EVENT_BYTES="20000",
        TRIGGER_BATCH_SIZE="50",
        DEAD_LETTER_SINK="kafka",
        DLQ_TOPIC=letters_topic,
        TRIGGER_STATUS_PORT=str(services.free_port()),
    )
    ensure_topics(Settings(kafka_bootstrap_servers=kafka_bootstrap), [(letters_topic, 1, {})])
    r.stand_in.taken[0].add(20)  # accounted for by its letter, read below: the commit watch may pass it
    r.produce(0, 20, size=3000)
    r.produce(0, 1, size=40_000)
    r.produce(0, 20, size=3000)
    trigger = r.trigger()
    r.wait_everything_committed()
    calls = list(r.stand_in.calls)
    assert all(size <= 20_000 for *_, size in calls)
    assert 20 not in {offset for _, first, count, _ in calls for offset in range(first, first + count)}
    assert max(count for _, _, count, _ in calls) > 1
    (letter,) = [decode_letter(value) for value in topic_values(kafka_bootstrap, letters_topic)]
    assert (letter["reason"], letter["topic"], letter["partition"], letter["offset"]) == ("too_large", r.topic, 0, 20)
    assert letter["value_bytes"] == 40_000 and letter["value_sha256"] == hashlib.sha256(b"x" * 40_000).hexdigest()
    assert metrics_of(trigger)["orders_trigger_records_too_large_total"] == 1


def status_of(trigger: services.Service) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{trigger.port}/status", timeout=5) as answer:
        assert answer.headers["Content-Type"].startswith("application/json")
        status: dict[str, Any] = json.loads(answer.read())
        return status


def metrics_of(trigger: services.Service) -> dict[str, float]:
    """The trigger's Prometheus samples, by name and labels as written: 'name{label="value",...}'."""
    with urllib.request.urlopen(f"http://127.0.0.1:{trigger.port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    lines = (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {sample: float(value) for sample, value in lines}


def partition_figures(r: Rig, trigger: services.Service, partition: int) -> dict[str, Any]:
    figures: dict[str, Any] = status_of(trigger)["partitions"].get(f"{r.topic}-{partition}", {})
    return figures


def test_status_shows_the_partitions_assigned_and_their_commits_once_orders_flow(rig: Callable[..., Rig]) -> None:
    """GIVEN a trigger consuming three partitions WHEN orders flow through it THEN GET /status lists the three
    as assigned, each with its last commit and no lag, and GET /metrics says the same."""
    r = rig(TRIGGER_STATISTICS_INTERVAL_S="0.2")
    trigger = r.trigger()
    for partition in range(PARTITIONS):
        r.produce(partition, 10 + partition)
    r.wait_everything_committed()

    def settled() -> bool:
        figures = status_of(trigger)["partitions"]
        return all(figures.get(f"{r.topic}-{p}", {}).get("lag") == 0 for p in range(PARTITIONS))

    services.wait_until(settled, 30, "every partition's lag 0", 0.2)
    status = status_of(trigger)
    assert status["assigned"] == [f"{r.topic}-{p}" for p in range(PARTITIONS)] and status["retrying"] == []
    for partition in range(PARTITIONS):
        figures = status["partitions"][f"{r.topic}-{partition}"]
        assert figures["committed_offset"] == 10 + partition and figures["committed_at"] and not figures["retrying"]
        assert figures["lag_seconds"] == 0  # nothing consumed waits for a commit
    metrics = metrics_of(trigger)
    for partition in range(PARTITIONS):
        labels = f'partition="{partition}",topic="{r.topic}"'
        assert metrics[f"orders_trigger_committed_offset{{{labels}}}"] == 10 + partition
        assert metrics[f"orders_trigger_consumer_lag{{{labels}}}"] == 0
        assert metrics[f"orders_trigger_partition_retrying{{{labels}}}"] == 0
    assert metrics['orders_trigger_batches_total{outcome="accepted"}'] >= PARTITIONS


def test_status_shows_a_retrying_partition_and_its_lag_until_the_backlog_is_taken(rig: Callable[..., Rig]) -> None:
    """GIVEN partition 0 committed at 5 WHEN the ingest stand-in fails its records while 20 more wait THEN
    GET /status and /metrics show partition 0 retrying with a lag above 0, every attempt carrying a fresh
    Function-Execution-Id that the trigger's log names; once the stand-in takes them, the lag is 0 again
    and nothing retries."""
    r = rig(TRIGGER_STATISTICS_INTERVAL_S="0.2")
    failing = threading.Event()
    r.stand_in.answer = take_all_but(lambda record: failing.is_set() and record.partition == 0)
    trigger = r.trigger()
    r.produce(0, 5)
    r.wait_committed({0: 5})
    failing.set()
    r.produce(0, 20)

    def retrying_with_lag() -> bool:
        figures = partition_figures(r, trigger, 0)
        return bool(figures.get("retrying")) and (figures.get("lag") or 0) > 0

    services.wait_until(retrying_with_lag, 30, "partition 0 retrying with a lag", 0.2)
    assert status_of(trigger)["retrying"] == [f"{r.topic}-0"]
    assert partition_figures(r, trigger, 0)["committed_offset"] == 5
    assert partition_figures(r, trigger, 0)["lag_seconds"] >= 0  # the age of offset 5, consumed and not committed
    labels = f'partition="0",topic="{r.topic}"'
    metrics = metrics_of(trigger)
    assert metrics[f"orders_trigger_partition_retrying{{{labels}}}"] == 1
    assert metrics[f"orders_trigger_consumer_lag{{{labels}}}"] > 0
    assert metrics['orders_trigger_batches_total{outcome="retried"}'] >= 1
    services.wait_until(lambda: r.stand_in.calls_from(0, 5) >= 2, 30, "the batch retried")

    failing.clear()
    r.wait_everything_committed()
    services.wait_until(lambda: partition_figures(r, trigger, 0).get("lag") == 0, 30, "partition 0's lag 0", 0.2)
    assert status_of(trigger)["retrying"] == [] and partition_figures(r, trigger, 0)["committed_offset"] == 25
    assert partition_figures(r, trigger, 0)["lag_seconds"] == 0
    ids = list(r.stand_in.execution_ids)
    assert len(set(ids)) == len(ids) and all(uuid.UUID(each) for each in ids)  # fresh per attempt
    log = trigger.log_tail(1000)
    assert all(each in log for each in ids)


def test_the_status_server_answers_json_even_to_what_it_does_not_serve(rig: Callable[..., Rig]) -> None:
    trigger = rig().trigger()
    for method, path, status in [("GET", "/nowhere", 404), ("POST", "/status", 501)]:
        request = urllib.request.Request(f"http://127.0.0.1:{trigger.port}{path}", method=method, data=None)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == status
        assert json.loads(refused.value.read())["error"]


def test_a_group_that_never_committed_shows_its_whole_backlog_as_lag(rig: Callable[..., Rig]) -> None:
    """GIVEN a new consumer group WHEN the stand-in fails the very first batch of partition 0 while 12 records
    wait THEN the lag of partition 0 is 12 (the group never committed: it starts at the first offset), and
    0 once the stand-in takes them."""
    r = rig(TRIGGER_STATISTICS_INTERVAL_S="0.2")
    failing = threading.Event()
    failing.set()
    r.stand_in.answer = take_all_but(lambda record: failing.is_set())
    r.produce(0, 12)
    trigger = r.trigger()
    services.wait_until(lambda: partition_figures(r, trigger, 0).get("lag") == 12, 30, "partition 0's lag 12", 0.2)
    assert partition_figures(r, trigger, 0)["committed_offset"] is None
    failing.clear()
    r.wait_everything_committed()
    services.wait_until(lambda: partition_figures(r, trigger, 0).get("lag") == 0, 30, "partition 0's lag 0", 0.2)


def health_of(trigger: services.Service, path: str = "/health") -> tuple[int, dict[str, Any]]:
    """The status server's answer to ``path``, whatever its status."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{trigger.port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_trigger_fenced_by_another_with_its_instance_id_exits_non_zero_saying_why(rig: Callable[..., Rig]) -> None:
    """GIVEN a trigger with an invocation in flight WHEN a second trigger joins with the same TRIGGER_INSTANCE_ID
    (static membership: the broker fences the first, a fatal error for its consumer) THEN the first answers 503
    on /health and /status with the reason while it finishes that invocation, then exits non-zero saying why;
    the second delivers everything, and nothing committed ever passes a record not taken."""
    r = rig(TRIGGER_INSTANCE_ID=f"same-{uuid.uuid4().hex[:8]}", TRIGGER_REQUEST_TIMEOUT_S="60")
    in_flight, release = threading.Event(), threading.Event()

    def hold_the_first(records: list[KafkaRecord]) -> Reply:
        reply = take_all_but()(records)
        if not in_flight.is_set():
            in_flight.set()
            reply.hold = release
        return reply

    r.stand_in.answer = hold_the_first
    r.produce(0, 10)
    first = r.trigger()
    services.wait_until(in_flight.is_set, 45, "the first trigger's invocation in flight")
    assert health_of(first) == (200, {"status": "ok"})
    r.trigger()
    services.wait_until(lambda: health_of(first)[0] == 503, 60, "the first trigger failing", 0.2)
    code, health = health_of(first)
    assert health["status"] == "failed" and "fenced" in health["failure"]
    code, status = health_of(first, "/status")
    assert code == 503 and status["failure"] == health["failure"]
    release.set()
    assert first.process is not None and first.process.wait(30) != 0
    first.process = None
    assert "fatal consumer error" in first.log_tail(200)
    r.produce(1, 10)
    r.wait_everything_committed()
