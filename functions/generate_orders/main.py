"""generate_orders: thin HTTP (functions-framework) and EventBridge Scheduler adapters over the core.

Each run logs one line (orders produced, how long it took) and counts the orders Kafka acknowledged:
``GET /metrics`` locally, EMF on Lambda.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from orders_core import heap
from orders_core.config import get_settings
from orders_core.generator.producer import (
    GenerateRequest,
    ProduceError,
    describe_request_error,
    ping_kafka,
    produce_orders,
)
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

FUNCTION = "generate_orders"
log = logging.getLogger(FUNCTION)
_settings = get_settings()  # the process's logging and Lambda conventions, set once at import
logs.configure_logging(_settings.log_format, _settings.log_level)
heap.settle()  # after the imports: what they loaded is left out of every collection
on_lambda = LambdaConventions(
    FUNCTION, _settings.powertools_metrics_namespace, _settings.log_level
)  # Powertools' Logger and Metrics for the Lambda handler


def _generate(payload: Any, emit: metrics.Emit) -> dict[str, Any]:
    """Validate the request and produce; raises ``ValidationError`` or ``ProduceError``. Counts what Kafka
    acknowledged, also when some orders were not."""
    request = GenerateRequest.of_call({} if payload is None else payload, get_settings())
    try:
        result = produce_orders(request, get_settings())
    except ProduceError as exc:
        emit(metrics.generated_samples(exc.produced, 0))
        log.warning(
            "orders not all produced: %s",
            exc,
            extra={
                "requested": request.count,
                "produced": exc.produced,
                "failed": exc.failed,
                "undelivered": exc.undelivered,
            },
        )
        raise
    emit(metrics.generated_samples(result.produced, result.invalid))
    log.info(
        "orders produced",
        extra={
            "requested": request.count,
            "produced": result.produced,
            "invalid": result.invalid,
            "duration_ms": round(result.elapsed_s * 1000, 1),
        },
    )
    return result.as_response()


def http_entry(request: flask.Request) -> FlaskAnswer:
    """POST ``application/json``, optionally ``{"count", "seed", "invalid_ratio", "max_items"}`` -> 200 with
    what was produced; ``GET /metrics``: the orders produced so far; ``GET /health``: 200 while the producer
    reaches the Kafka cluster, else 503."""
    if request.path == metrics.PATH:
        answer = metrics.endpoint(request.method, multiproc_dir=get_settings().prometheus_multiproc_dir)
    elif request.path == "/health" and request.method in ("GET", "HEAD"):  # readiness: Kafka's cluster answers
        answer = readiness(kafka=lambda: ping_kafka(get_settings()))
    else:
        with logs.invocation(FUNCTION, logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))):
            answer = _answer(request)
    return (answer.body, answer.status, answer.headers)


def _answer(request: flask.Request) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request.method, "POST")
    # Only JSON: a web page can POST text/plain, a form, or nothing to any address without asking first.
    if request.mimetype != "application/json":
        return error(415, "unsupported_media_type", "POST the request as application/json")
    payload: Any = None
    body = flask_body(request, get_settings().generate_max_body_bytes)
    if isinstance(body, HttpResponse):
        return body
    if body := body.strip():
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            return error(400, "bad_request", "the body must be a JSON object")
    try:
        return json_response(200, _generate(payload, metrics.to_prometheus))
    except ValidationError as exc:
        return error(400, "bad_request", describe_request_error(exc))
    except ProduceError as exc:
        if exc.unavailable:
            return error(503, "kafka_unavailable", str(exc))
        return error(502, "kafka_rejected", str(exc))


@on_lambda.handler
def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """EventBridge Scheduler target: the schedule's Input JSON is the event; raising makes it retry."""
    with logs.invocation(FUNCTION, logs.request_id_from(getattr(context, "aws_request_id", None))):
        return _generate(event, on_lambda.emit)
