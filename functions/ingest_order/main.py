"""ingest_order: Kafka records in, orders stored in PostgreSQL, refused records to the dead-letter queue.

Two adapters over one core: ``http_entry`` (functions-framework; the local trigger POSTs the Lambda Kafka
event to it) and ``handler`` (AWS Lambda with a Kafka event source mapping).
"""

from __future__ import annotations

from typing import Any

import flask
import functions_framework

from orders_core import runtime
from orders_core.kafka_event import BadEvent, decode_event
from orders_core.logs import configure_logging
from orders_core.responses import HttpResponse, error, json_response, method_not_allowed

configure_logging()


class BatchNotStored(Exception):
    """Raised in Lambda so the platform retries the batch (and sends it on-failure after its retries)."""


def _flask(answer: HttpResponse) -> flask.Response:
    return flask.Response(answer.body, status=answer.status, headers=answer.headers)


@functions_framework.http
def http_entry(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        return _flask(method_not_allowed(request.method, "POST"))
    try:
        records = decode_event(request.get_json(force=True, silent=True))
    except BadEvent as exc:
        return _flask(error(400, "bad_request", str(exc)))
    report = runtime.ingest_service().ingest(records)
    # 200 with batchItemFailures when only some records failed; 503 when none could be stored.
    status = 503 if report.failed and len(report.failed) == len(records) else 200
    return _flask(json_response(status, report.as_dict()))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = runtime.ingest_service().ingest(decode_event(event))
    if report.failed:
        raise BatchNotStored(f"{len(report.failed)} records not stored: {report.failure}")
    return report.as_dict()
