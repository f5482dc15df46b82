"""ingest_order: Kafka records in, orders stored in PostgreSQL, refused records to the dead-letter queue.

Two adapters over one core: ``http_entry`` (functions-framework; the local trigger POSTs the Lambda Kafka
event to it) and ``handler`` (AWS Lambda with a Kafka event source mapping).
"""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework

from orders_core import runtime
from orders_core.kafka_event import BadEvent, decode_event
from orders_core.logs import configure_logging

configure_logging()


class BatchNotStored(Exception):
    """Raised in Lambda so the platform retries the batch (and sends it on-failure after its retries)."""


def _answer(status: int, payload: dict[str, Any]) -> flask.Response:
    return flask.Response(json.dumps(payload), status=status, mimetype="application/json")


@functions_framework.http
def http_entry(request: flask.Request) -> flask.Response:
    if request.method != "POST":
        return _answer(405, {"error": "method_not_allowed", "message": "POST a Kafka event."})
    try:
        records = decode_event(request.get_json(force=True, silent=True))
    except BadEvent as exc:
        return _answer(400, {"error": "bad_request", "message": str(exc)})
    report = runtime.ingest_service().ingest(records)
    # 200 with batchItemFailures when only some records failed; 503 when none could be stored.
    status = 503 if report.failed and len(report.failed) == len(records) else 200
    return _answer(status, report.as_dict())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report = runtime.ingest_service().ingest(decode_event(event))
    if report.failed:
        raise BatchNotStored(f"{len(report.failed)} records not stored: {report.failure}")
    return report.as_dict()
