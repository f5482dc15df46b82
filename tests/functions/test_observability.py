"""What an operator reads of ingest_order and get_order in-process: one log line per invocation naming its
request, dead letters naming it too, and the counts on /metrics (Prometheus) or printed as EMF (Lambda)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import flask.testing
import functions_framework
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack import ROOT
from devstack.stack import drain
from orders_core import bootstrap as runtime
from orders_core.config import Settings
from tests.support.events import kafka_event, order_bytes

INGEST = "functions/ingest_order/main.py"
LOOKUP = "functions/get_order/main.py"
HEADER = "Function-Execution-Id"


def load(source: str) -> ModuleType:
    """A function's module, freshly loaded (its logging and clients set up from the current environment)."""
    spec = importlib.util.spec_from_file_location(f"main_{abs(hash(source))}", ROOT / source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of output that is a JSON object (log lines on stderr, EMF lines on stdout)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def log_lines(text: str, message: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if line.get("message") == message]


def emf_documents(text: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(text) if "_aws" in line]


def emf(document: dict[str, Any]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """One EMF document: (metric name, its labels and dimensions) -> the sum of its values. A labelled sample's
    metric is named as its Prometheus series, ``name{label=value}``."""
    [directive] = document["_aws"]["CloudWatchMetrics"]
    [dimensions] = directive["Dimensions"]
    figures: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for metric in directive["Metrics"]:
        name, _, labels = metric["Name"].removesuffix("}").partition("{")
        labelled = {tuple(pair.split("=", 1)) for pair in labels.split(",") if pair}
        key = (name, frozenset(labelled | {(dimension, document[dimension]) for dimension in dimensions}))
        values = document[metric["Name"]]
        figures[key] = figures.get(key, 0) + sum(values if isinstance(values, list) else [values])
    return figures


def lambda_context(request_id: str, function: str) -> SimpleNamespace:
    """What the Lambda runtime hands a handler (the attributes Powertools reads)."""
    return SimpleNamespace(
        aws_request_id=request_id,
        function_name=function,
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{function}",
    )


RFC_3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def scrape(client: flask.testing.FlaskClient) -> Callable[[str, dict[str, str]], float]:
    """The function's /metrics now, as a lookup of one sample's value (0 when absent)."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }
    return lambda name, labels: samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(autouse=True)
def info_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """The invocation lines are INFO (the test stack's default level is WARNING)."""
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    runtime.reset()


@pytest.fixture
def ingest(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source=INGEST).test_client()


@pytest.fixture
def lookup(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source=LOOKUP).test_client()


def batch(make_order: Callable[..., dict[str, Any]], first_offset: int = 40) -> dict[str, Any]:
    """Two orders and one record that holds none, at consecutive offsets of orders-0."""
    values = [order_bytes(make_order()), b"not an order", order_bytes(make_order())]
    return kafka_event(values, first_offset=first_offset)


def test_the_request_id_the_trigger_sends_names_the_log_line_and_the_dead_letter(
    ingest: flask.testing.FlaskClient, make_order: Any, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a batch of two orders and junk sent with a request id WHEN ingested THEN one JSON line tells
    the whole invocation under that id, and the dead letter names the same id."""
    drain(settings)
    capsys.readouterr()
    response = ingest.post("/", json=batch(make_order), headers={HEADER: "trigger-7f3a"})
    assert response.status_code == 200 and response.headers[HEADER] == "trigger-7f3a"
    [line] = log_lines(capsys.readouterr().err, "batch ingested")
    assert line["function"] == "ingest_order" and line["request_id"] == "trigger-7f3a"
    assert {key: line[key] for key in ("records", "stored", "duplicates", "dead_lettered", "failed")} == {
        "records": 3,
        "stored": 2,
        "duplicates": 0,
        "dead_lettered": 1,
        "failed": 0,
    }
    assert line["batch"] == ["orders-0@40..42"] and line["dead_letters"] == ["orders-0@41 not_json"]
    assert line["duration_ms"] >= 0 and line["level"] == "INFO"
    [letter] = drain(settings)
    assert (letter["offset"], letter["request_id"]) == (41, "trigger-7f3a")


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "two words", "ümlaut", "a\tb"])
def test_without_a_sensible_request_id_one_is_made_and_used_alike(
    ingest: flask.testing.FlaskClient,
    make_order: Any,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    sent: str | None,
) -> None:
    """A missing id (functions-framework makes one), or one a caller could forge lines or bloat logs with, is
    replaced by a fresh one; the log line and the dead letter name the same."""
    drain(settings)
    capsys.readouterr()
    headers = {} if sent is None else {HEADER: sent}
    response = ingest.post("/", json=batch(make_order), headers=headers)
    made = response.headers[HEADER]
    assert made != sent and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", made)
    [line] = log_lines(capsys.readouterr().err, "batch ingested")
    assert line["request_id"] == made
    assert [letter["request_id"] for letter in drain(settings)] == [made]


def test_ingest_metrics_count_records_by_outcome_and_dead_letters_by_reason(
    ingest: flask.testing.FlaskClient, make_order: Any, settings: Settings
) -> None:
    before = scrape(ingest)
    event = batch(make_order)
    ingest.post("/", json=event)
    ingest.post("/", json=event)  # redelivered: duplicates, and the junk dead-lettered again
    after = scrape(ingest)

    def added(name: str, **labels: str) -> float:
        return after(name, labels) - before(name, labels)

    assert added("orders_ingest_invocations_total") == 2
    assert added("orders_ingest_records_total", outcome="stored") == 2
    assert added("orders_ingest_records_total", outcome="duplicate") == 2
    assert added("orders_ingest_records_total", outcome="dead_lettered") == 2
    assert added("orders_ingest_records_total", outcome="failed") == 0
    assert added("orders_ingest_dead_letters_total", reason="not_json") == 2
    assert added("orders_ingest_batch_seconds_count") == 2
    drain(settings)


def test_the_ingest_lambda_handler_logs_with_its_lambda_context_and_flushes_one_emf_document(
    make_order: Any, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a batch delivered on Lambda, traced by X-Ray WHEN handled THEN its log line carries the Lambda
    context (cold start, request id, trace id) with an RFC 3339 timestamp, and every sample of the invocation
    goes out in ONE EMF document, under the names of /metrics."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-67a0c0de-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1")
    drain(settings)
    main = load(INGEST)
    capsys.readouterr()
    main.handler(batch(make_order), lambda_context("c0ffee00-aws-request", "ingest_order"))
    out, err = capsys.readouterr()
    [line] = log_lines(err, "batch ingested")
    assert (line["function"], line["request_id"], line["stored"]) == ("ingest_order", "c0ffee00-aws-request", 2)
    assert line["function_request_id"] == "c0ffee00-aws-request" and line["cold_start"] in (True, False)
    assert line["xray_trace_id"] == "1-67a0c0de-0123456789abcdef01234567"
    assert RFC_3339.fullmatch(line["timestamp"]), line["timestamp"]
    [document] = emf_documents(out)
    figures = emf(document)
    function = ("function", "ingest_order")
    assert figures[("orders_ingest_records_total", frozenset({function, ("outcome", "stored")}))] == 2
    assert figures[("orders_ingest_records_total", frozenset({function, ("outcome", "dead_lettered")}))] == 1
    assert figures[("orders_ingest_dead_letters_total", frozenset({function, ("reason", "not_json")}))] == 1
    assert figures[("orders_ingest_invocations_total", frozenset({function}))] == 1
    assert ("orders_ingest_batch_seconds", frozenset({function})) in figures
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == settings.powertools_metrics_namespace
    assert [letter["request_id"] for letter in drain(settings)] == ["c0ffee00-aws-request"]


def test_a_lambda_invocation_leaves_the_log_level_to_the_next_logging_setup(
    make_order: Any, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN the ingest handled once on Lambda at LOG_LEVEL=WARNING (Powertools' Logger made) WHEN the module is
    loaded again at INFO (as a warm process serving the functions-framework entry) THEN its INFO lines are written:
    the level is the root logger's, not one Powertools pinned on the function's logger."""
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    runtime.reset()
    load(INGEST).handler(batch(make_order), lambda_context("quiet-1", "ingest_order"))
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    runtime.reset()
    ingest = functions_framework.create_app(target="http_entry", source=INGEST).test_client()
    capsys.readouterr()
    assert ingest.post("/", json=batch(make_order, 60), headers={HEADER: "loud-1"}).status_code == 200
    [line] = log_lines(capsys.readouterr().err, "batch ingested")
    assert line["request_id"] == "loud-1"
    drain(settings)


def test_lookup_logs_one_line_per_request_and_counts_answers_by_status_and_tier(
    lookup: flask.testing.FlaskClient, stored_order: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    uid = stored_order["order_uid"]
    before = scrape(lookup)
    capsys.readouterr()
    assert lookup.get(f"/orders/{uid}", headers={HEADER: "page-1"}).status_code == 200  # from PostgreSQL
    assert lookup.get(f"/orders/{uid}").status_code == 200  # from the in-process tier
    assert lookup.get("/orders/not-there-at-all").status_code == 404
    assert lookup.get("/orders/bad%20uid").status_code == 400
    lines = log_lines(capsys.readouterr().err, "lookup answered")
    assert [(line["status"], line.get("tier")) for line in lines] == [
        (200, "database"),
        (200, "local"),
        (404, None),
        (400, None),
    ]
    assert lines[0]["request_id"] == "page-1" and lines[0]["path"] == f"/orders/{uid}"
    assert all(line["function"] == "get_order" and line["duration_ms"] >= 0 for line in lines)
    after = scrape(lookup)

    def added(name: str, **labels: str) -> float:
        return after(name, labels) - before(name, labels)

    assert [added("orders_lookups_total", tier=tier) for tier in ("local", "memcached", "database")] == [1, 0, 1]
    assert [added("orders_lookup_responses_total", status=s) for s in ("200", "404", "400")] == [2, 1, 1]
    assert added("orders_lookup_seconds_count") == 4
    assert added("orders_http_requests_total", route="/orders/{order_uid}", status="200") == 2
    assert added("orders_http_request_seconds_count", route="/orders/{order_uid}") == 4


def test_health_checks_scrapes_and_the_api_document_are_counted_by_route_not_as_lookups(
    lookup: flask.testing.FlaskClient, stored_order: dict[str, Any]
) -> None:
    """GIVEN the requests a stack makes of itself (compose's health checks, Prometheus' scrapes, the OpenAPI
    document, a stray path) WHEN answered THEN each counts under its route, and the lookup figures stay the
    customers' alone."""
    before = scrape(lookup)
    for path in ("/health", "/health", "/livez", "/openapi.json", "/metrics", "/no/such/path"):
        lookup.get(path)
    lookup.get(f"/orders/{stored_order['order_uid']}")
    after = scrape(lookup)

    def added(name: str, **labels: str) -> float:
        return after(name, labels) - before(name, labels)

    assert added("orders_lookup_seconds_count") == 1
    assert sum(added("orders_lookup_responses_total", status=s) for s in ("200", "404", "503")) == 1
    assert added("orders_http_requests_total", route="/health", status="200") == 2
    assert added("orders_http_requests_total", route="/livez", status="200") == 1
    assert added("orders_http_requests_total", route="/openapi.json", status="200") == 1
    assert added("orders_http_requests_total", route="/metrics", status="200") == 2  # this test's first scrape too
    assert added("orders_http_requests_total", route="other", status="404") == 1
    assert added("orders_http_request_seconds_count", route="/health") == 2


def test_ingest_metrics_tell_the_dead_letter_queue_depth_and_its_oldest_letter_age(
    ingest: flask.testing.FlaskClient, make_order: Any, settings: Settings
) -> None:
    """GIVEN an empty queue WHEN a batch dead-letters a record THEN ingest_order's /metrics (read afresh) shows
    one letter waiting, and its age."""
    drain(settings)
    ingest.post("/", json=batch(make_order))
    runtime.reset()  # the queue's figures are kept for a few seconds: a fresh read
    client = functions_framework.create_app(target="http_entry", source=INGEST).test_client()
    after = scrape(client)
    assert after("orders_dead_letter_queue_messages", {}) == 1
    assert 0 <= after("orders_dead_letter_queue_oldest_age_seconds", {}) < 600
    drain(settings)


def test_the_lookup_lambda_handler_flushes_one_emf_document_per_invocation(
    stored_order: dict[str, Any], settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    main = load(LOOKUP)
    capsys.readouterr()
    context = lambda_context("lookup-aws-1", "get_order")
    for path in (f"/orders/{stored_order['order_uid']}", "/orders/not-there-either"):
        main.handler({"rawPath": path, "requestContext": {"http": {"method": "GET", "path": path}}}, context)
    out, err = capsys.readouterr()
    lines = log_lines(err, "lookup answered")
    assert [(line["request_id"], line["function_request_id"]) for line in lines] == [("lookup-aws-1",) * 2] * 2
    found, missing = (emf(document) for document in emf_documents(out))
    function = ("function", "get_order")
    assert found[("orders_lookups_total", frozenset({function, ("tier", "database")}))] == 1
    assert found[("orders_lookup_responses_total", frozenset({function, ("status", "200")}))] == 1
    assert missing[("orders_lookup_responses_total", frozenset({function, ("status", "404")}))] == 1
    assert ("orders_lookup_seconds", frozenset({function})) in found and (
        "orders_lookup_seconds",
        frozenset({function}),
    ) in missing


def test_a_lambda_handler_that_raises_still_flushes_what_it_counted(
    make_order: Any, settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN PostgreSQL unreachable WHEN a batch is delivered on Lambda THEN the handler raises (the platform
    retries the batch) and the invocation's EMF document still goes out, counting the records failed."""
    monkeypatch.setenv("PGPORT", "9")
    runtime.reset()
    main = load(INGEST)
    capsys.readouterr()
    with pytest.raises(main.BatchNotStored):
        main.handler(batch(make_order), lambda_context("ingest-aws-2", "ingest_order"))
    out, err = capsys.readouterr()
    [document] = emf_documents(out)
    figures = emf(document)
    function = ("function", "ingest_order")
    assert figures[("orders_ingest_records_total", frozenset({function, ("outcome", "failed")}))] == 3
    [line] = log_lines(err, "batch ingested")
    assert line["function_request_id"] == "ingest-aws-2" and line["level"] == "WARNING"


def test_log_format_text_gives_plain_lines_with_the_fields(
    make_order: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "text")
    runtime.reset()
    client = functions_framework.create_app(target="http_entry", source=INGEST).test_client()
    capsys.readouterr()
    client.post("/", json=kafka_event([order_bytes(make_order())]), headers={HEADER: "plain-1"})
    [line] = [line for line in capsys.readouterr().err.splitlines() if "batch ingested" in line]
    assert not line.startswith("{")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO ingest_order: batch ingested ", line)
    assert " function=ingest_order " in line and " request_id=plain-1" in line and " stored=1 " in line
    assert ' batch=["orders-0@0"] ' in line
