"""ingest_order: Kafka records in, orders stored in PostgreSQL, refused records to the dead-letter queue.

Two adapters over one core: ``http_entry`` (functions-framework; the local trigger POSTs the Lambda Kafka
event to it) and ``handler`` (AWS Lambda with a Kafka event source mapping reporting batch item failures).
Both answer AWS's partial batch response: the records to redeliver, named by partition and offset (on Lambda
that alone, as AWS documents it; over HTTP with the batch's counts beside it). Each invocation logs one line
saying what became of its batch, and counts it (``GET /metrics`` locally, EMF on Lambda).
``GET /health`` (functions-framework only) is its readiness: 200 when PostgreSQL and the queue answer.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from orders_core import bootstrap as runtime
from orders_core import heap
from orders_core.adapters.kafka_event import BadEvent, decode_event
from orders_core.config import get_settings
from orders_core.domain.ingest import IngestReport
from orders_core.domain.ports import KafkaRecord
from orders_core.http import logs, metrics
from orders_core.http.limits import flask_body
from orders_core.http.on_lambda import LambdaConventions
from orders_core.http.readiness import readiness
from orders_core.http.responses import HttpResponse, error, json_response, method_not_allowed

if TYPE_CHECKING:  # the server stack is the local entry's, not the Lambda handler's: never loaded for types
    import flask

# functions-framework serves ``http_entry`` (its default signature type is http: no decorator needed), and
# Flask makes a (body, status, headers) tuple a response. So importing this module loads no web framework,
# and the Lambda handler below starts without one.
FlaskAnswer = tuple[bytes, int, dict[str, str]]

FUNCTION = "ingest_order"
MAX_LOGGED_LETTERS = 50  # a batch of thousands of refused records still logs one line of sensible size
log = logging.getLogger(FUNCTION)
_settings = get_settings()  # the process's logging and Lambda conventions, set once at import
logs.configure_logging(_settings.log_format, _settings.log_level)
heap.settle()  # after the imports: what they loaded is left out of every collection
on_lambda = LambdaConventions(
    FUNCTION, _settings.powertools_metrics_namespace, _settings.log_level
)  # Powertools' Logger and Metrics for the Lambda handler


class BatchNotStored(Exception):
    """Raised in Lambda when no record could be stored, so the platform retries the whole batch."""


def _ingest(records: list[KafkaRecord], request_id: str, emit: metrics.Emit) -> IngestReport:
    """Ingest one batch, then count it and log one line saying what became of it."""
    started = time.perf_counter()
    report = runtime.ingest_service().ingest(records, request_id)
    seconds = time.perf_counter() - started
    emit(metrics.ingest_samples(report, seconds))
    fields = {
        "records": len(records),
        "stored": report.stored,
        "duplicates": report.duplicates,
        "dead_lettered": report.dead_lettered,
        "failed": len(report.failed),
        "duration_ms": round(seconds * 1000, 1),
        "batch": logs.record_spans(records),
        "failed_records": logs.record_spans(report.failed),
        "dead_letters": [f"{record.label} {reason}" for record, reason in report.dead_letters[:MAX_LOGGED_LETTERS]],
        **({"error": report.failure} if report.failure else {}),
    }
    log.log(logging.WARNING if report.failed else logging.INFO, "batch ingested", extra=fields)
    return report


def _flask(answer: HttpResponse) -> FlaskAnswer:
    return (answer.body, answer.status, answer.headers)


def http_entry(request: flask.Request) -> FlaskAnswer:
    if request.path == metrics.PATH:  # with the dead-letter queue's depth: the letters this function writes
        return _flask(
            metrics.endpoint(
                request.method, runtime.dead_letter_figures(), multiproc_dir=get_settings().prometheus_multiproc_dir
            )
        )
    if request.path == "/health" and request.method in ("GET", "HEAD"):  # readiness: PostgreSQL and the queue
        return _flask(readiness(postgres=runtime.order_store().ping, queue=runtime.dead_letter_queue().ping))
    request_id = logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))
    with logs.invocation(FUNCTION, request_id), heap.batch_in_hand():
        answer = _answer(request, request_id)
    answer.headers[logs.REQUEST_ID_HEADER] = request_id
    return _flask(answer)


def _answer(request: flask.Request, request_id: str) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request.method, "POST")
    # Only JSON: a web page can POST text/plain or a form to any address without asking first.
    if request.mimetype != "application/json":
        return error(415, "unsupported_media_type", "POST the event as application/json.")
    body = flask_body(request, get_settings().ingest_max_body_bytes)
    if isinstance(body, HttpResponse):
        log.warning("event refused: %s", body.body.decode(), extra={"status": body.status})
        return body
    try:
        records = decode_event(body)
    except BadEvent as exc:
        log.warning("event refused: %s", exc, extra={"status": 400})
        return error(400, "bad_request", str(exc))
    report = _ingest(records, request_id, metrics.to_prometheus)
    # 200 with batchItemFailures when only some records failed; 503 when none could be stored.
    status = 503 if report.failed and len(report.failed) == len(records) else 200
    return json_response(status, report.as_dict())


@on_lambda.handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = logs.request_id_from(getattr(context, "aws_request_id", None))
    with logs.invocation(FUNCTION, request_id), heap.batch_in_hand():
        records = decode_event(event)
        report = _ingest(records, request_id, on_lambda.emit)
    if report.failed and len(report.failed) == len(records):
        raise BatchNotStored(f"none of {len(records)} records stored: {report.failure}")
    return report.batch_response()  # the platform redelivers each partition from its first failed record
