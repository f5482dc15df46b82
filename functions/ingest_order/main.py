"""ingest_order: Kafka records in, orders stored in PostgreSQL, refused records to the dead-letter queue.

Two adapters over one core: ``http_entry`` (functions-framework; the local trigger POSTs the Lambda Kafka
event to it) and ``handler`` (AWS Lambda with a Kafka event source mapping reporting batch item failures).
Both answer AWS's partial batch response: the records to redeliver, named by partition and offset.
``GET /health`` (functions-framework only) is its readiness: 200 when PostgreSQL and the queue answer.
"""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from orders_core import runtime
from orders_core.kafka_event import BadEvent, decode_event
from orders_core.logs import configure_logging
from orders_core.readiness import readiness
from orders_core.responses import HttpResponse, error, json_response, method_not_allowed

configure_logging()


class BatchNotStored(Exception):
    """Raised in Lambda when no record could be stored, so the platform retries the whole batch."""


def _flask(answer: HttpResponse) -> flask.Response:
    return flask.Response(answer.body, status=answer.status, headers=answer.headers)


@functions_framework.http
def http_entry(request: flask.Request) -> flask.Response:
    if request.path == "/health" and request.method in ("GET", "HEAD"):  # readiness: PostgreSQL and the queue
        return _flask(readiness(postgres=runtime.order_store().ping, queue=runtime.dead_letter_queue().ping))
    if request.method != "POST":
        return _flask(method_not_allowed(request.method, "POST"))
    # Only JSON: a web page can POST text/plain or a form to any address without asking first.
    if request.mimetype != "application/json":
        return _flask(error(415, "unsupported_media_type", "POST the event as application/json."))
    try:
        records = decode_event(json.loads(request.get_data()))
    except (ValueError, RecursionError) as exc:  # BadEvent, or not JSON, or JSON nested too deeply
        message = str(exc) if isinstance(exc, BadEvent) else "the body is not JSON"
        return _flask(error(400, "bad_request", message))
    report = runtime.ingest_service().ingest(records)
    # 200 with batchItemFailures when only some records failed; 503 when none could be stored.
    status = 503 if report.failed and len(report.failed) == len(records) else 200
    return _flask(json_response(status, report.as_dict()))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = decode_event(event)
    report = runtime.ingest_service().ingest(records)
    if report.failed and len(report.failed) == len(records):
        raise BatchNotStored(f"none of {len(records)} records stored: {report.failure}")
    return report.as_dict()  # the platform redelivers each partition from its first failed record
