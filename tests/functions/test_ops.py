"""get_order's GET /ops: the processes' /metrics scraped server-side into cumulative figures, against stand-in
metric endpoints serving real Prometheus text with the names the functions and the trigger export."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import flask.testing
import functions_framework
import pytest

from devstack.services import free_port, wait_until
from orders_core import bootstrap as runtime
from orders_core.config import Settings
from orders_core.http.ops import REUSE_S, MetricsScraper
from tests.support.metrics import Fleet, silent_server, stand_ins

Client = Callable[[str], flask.testing.FlaskClient]


@pytest.fixture
def get_order(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """get_order's Flask adapter with OPS_METRICS_URLS set to the given value (no data service is touched)."""

    def make(urls: str) -> flask.testing.FlaskClient:
        monkeypatch.setenv("OPS_METRICS_URLS", urls)
        monkeypatch.setenv("OPS_SCRAPE_TIMEOUT_S", "0.5")
        runtime.reset()
        return functions_framework.create_app(target="http_entry", source="functions/get_order/main.py").test_client()

    yield make
    runtime.reset()


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    with stand_ins(3) as (ingest, lookup, trigger):
        yield Fleet(ingest, lookup, trigger)


def test_figures_are_the_sources_counters_and_gauges(get_order: Client, fleet: Fleet) -> None:
    # GIVEN each process's metrics, and a second get_order instance whose lookups add to the first's
    fleet.records.labels("stored").inc(120)
    fleet.records.labels("dead_lettered").inc(3)
    fleet.dead_letters.labels("invalid").inc(2)
    fleet.dead_letters.labels("not_json").inc()
    fleet.lookups.labels("local").inc(70)
    fleet.lookups.labels("database").inc(5)
    fleet.responses.labels("200").inc(75)
    fleet.responses.labels("404").inc(4)
    for partition, lag in ((0, 0), (2, 7), (10, 41)):
        fleet.lag.labels("orders", str(partition)).set(lag)
        fleet.committed.labels("orders", str(partition)).set(1000 + partition)
        fleet.retrying.labels("orders", str(partition)).set(partition == 10)
    with stand_ins(1) as (second,):
        second.counter("orders_lookups", "tier").labels("local").inc(30)
        client = get_order(f"{fleet.urls()},get_order_2={second.url}")
        # WHEN the ops view asks
        answer = client.get("/ops")
    # THEN every figure is there, summed over the instances, partitions in numeric order
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    body = answer.json
    assert body["sources"] == {"ingest_order": "ok", "get_order": "ok", "trigger": "ok", "get_order_2": "ok"}
    counters = body["counters"]
    assert counters["ingest_records"] == {"stored": 120, "dead_lettered": 3}
    assert counters["dead_letters"] == {"invalid": 2, "not_json": 1}
    assert counters["lookups"] == {"database": 5, "local": 100}
    assert counters["lookup_responses"] == {"200": 75, "404": 4}
    assert counters["generated"] == 0 and counters["trigger_batches"] == {}
    assert body["partitions"] == [
        {"topic": "orders", "partition": 0, "lag": 0, "committed_offset": 1000, "retrying": 0},
        {"topic": "orders", "partition": 2, "lag": 7, "committed_offset": 1002, "retrying": 0},
        {"topic": "orders", "partition": 10, "lag": 41, "committed_offset": 1010, "retrying": 1},
    ]
    assert abs(body["time"] - time.time()) < 60


def test_figures_include_lag_in_seconds_the_dead_letter_queue_and_the_histograms(
    get_order: Client, fleet: Fleet
) -> None:
    # GIVEN a trigger lagging 12.5 s on one partition, 3 letters waiting for 90 s, and some lookups timed
    fleet.lag.labels("orders", "0").set(40)
    fleet.lag_seconds.labels("orders", "0").set(12.5)
    fleet.letters_waiting.set(3)
    fleet.oldest_letter.set(90)
    for seconds in (0.001, 0.002, 0.3):
        fleet.lookup_seconds.observe(seconds)
    # WHEN the ops view asks
    body = get_order(fleet.urls()).get("/ops").json
    # THEN they are there as the page needs them
    assert body["partitions"][0]["lag_seconds"] == 12.5
    assert body["gauges"]["dead_letter_queue_messages"] == 3
    assert body["gauges"]["dead_letter_queue_oldest_age_seconds"] == 90
    assert body["gauges"]["lookup_store_queue"] is None  # no source reported it
    lookup_seconds = body["histograms"]["lookup_seconds"]
    assert lookup_seconds["count"] == 3 and lookup_seconds["buckets"][-1] == [None, 3]
    assert dict(map(tuple, lookup_seconds["buckets"]))[0.005] == 2
    assert body["histograms"]["ingest_batch_seconds"]["count"] == 0


def test_dead_sources_are_reported_and_the_live_ones_still_answer(
    get_order: Client, fleet: Fleet, unused_url: str
) -> None:
    # GIVEN a source where nothing listens, one that never answers, one answering 500, one answering junk
    fleet.records.labels("stored").inc(9)
    with stand_ins(2) as (failing, junk), silent_server() as silent:
        failing.status = 500
        junk.body = b"orders_ingest_records_total{outcome=stored 5\n"
        urls = f"{fleet.urls()},closed={unused_url},silent={silent},failing={failing.url},junk={junk.url}"
        client = get_order(urls)
        # WHEN the ops view asks
        started = time.monotonic()
        answer = client.get("/ops")
        elapsed = time.monotonic() - started
    # THEN it answers (not held by the silent source) with each source's state and the live figures
    assert answer.status_code == 200
    assert answer.json["sources"] == {
        "ingest_order": "ok",
        "get_order": "ok",
        "trigger": "ok",
        "closed": "unreachable",
        "silent": "unreachable",
        "failing": "unreachable",
        "junk": "unparseable",
    }
    assert answer.json["counters"]["ingest_records"] == {"stored": 9}
    assert elapsed < 15  # the scrape timeout is 0.5 s; the silent source would hold a naive scrape forever


def test_answers_are_cumulative_and_follow_the_counters(get_order: Client, fleet: Fleet) -> None:
    client = get_order(fleet.urls())
    fleet.records.labels("stored").inc(10)
    first = client.get("/ops").json
    fleet.records.labels("stored").inc(15)
    # Answers are shared for a second (polling pages cost the sources little): the next scrape brings the rise
    answers: list[dict[str, Any]] = []
    wait_until(lambda: answers.append(client.get("/ops").json) or answers[-1] != first, 10, "a fresh answer")
    second = answers[-1]
    assert (first["counters"]["ingest_records"]["stored"], second["counters"]["ingest_records"]["stored"]) == (10, 25)
    assert second["time"] > first["time"]


def test_no_ops_when_no_sources_are_configured(get_order: Client) -> None:
    answer = get_order("").get("/ops")
    assert answer.status_code == 404 and answer.json["error"] == "not_found"


def test_a_malformed_source_list_stops_the_function_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_METRICS_URLS", "ingest_order=file:///etc/passwd")
    with pytest.raises(ValueError, match="name=http://host:port/metrics"):
        Settings()


@pytest.fixture
def unused_url() -> str:
    return f"http://127.0.0.1:{free_port()}/metrics"


def test_a_request_never_waits_behind_another_ones_scrape(fleet: Fleet) -> None:
    # GIVEN figures scraped once, then a source that stops answering (its answer held back)
    clock = [1000.0]
    scraper = MetricsScraper({"ingest_order": fleet.ingest.url}, timeout_s=8, clock=lambda: clock[0])
    fleet.records.labels("stored").inc(5)
    first = scraper.snapshot()
    fleet.ingest.gate.clear()
    clock[0] += REUSE_S  # the figures are due for a new scrape
    # WHEN one request is scraping the held source and another asks meanwhile
    scraping = threading.Thread(target=scraper.snapshot)
    scraping.start()
    wait_until(lambda: fleet.ingest.waiting > 0, 10, "the scrape to reach the held source")
    meanwhile: list[dict[str, Any]] = []
    asking = threading.Thread(target=lambda: meanwhile.append(scraper.snapshot()))
    asking.start()
    asking.join(timeout=5)
    # THEN the second gets the last figures at once, while the scrape still waits on the source
    assert meanwhile == [first] and scraping.is_alive()
    fleet.ingest.gate.set()
    scraping.join(timeout=15)
