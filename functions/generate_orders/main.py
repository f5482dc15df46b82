"""generate_orders: thin HTTP (functions-framework) and EventBridge Scheduler adapters over the core."""

from __future__ import annotations

import json
from typing import Any

import flask
import functions_framework
from pydantic import ValidationError

from orders_core.producer import GenerateRequest, ProduceError, describe_request_error, produce_orders
from orders_core.responses import HttpResponse, error, json_response, method_not_allowed


def _generate(payload: Any) -> dict[str, Any]:
    """Validate the request and produce; raises ``ValidationError`` or ``ProduceError``."""
    request = GenerateRequest.model_validate({} if payload is None else payload)
    return produce_orders(request).as_response()


@functions_framework.http
def http_entry(request: flask.Request) -> flask.Response:
    """POST ``application/json``, optionally ``{"count", "seed", "invalid_ratio", "max_items"}`` -> 200 with
    what was produced."""
    answer = _answer(request)
    return flask.Response(answer.body, status=answer.status, headers=answer.headers)


def _answer(request: flask.Request) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed(request.method, "POST")
    # Only JSON: a web page can POST text/plain, a form, or nothing to any address without asking first.
    if request.mimetype != "application/json":
        return error(415, "unsupported_media_type", "POST the request as application/json")
    payload: Any = None
    if body := request.get_data().strip():
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            return error(400, "bad_request", "the body must be a JSON object")
    try:
        return json_response(200, _generate(payload))
    except ValidationError as exc:
        return error(400, "bad_request", describe_request_error(exc))
    except ProduceError as exc:
        if exc.unavailable:
            return error(503, "kafka_unavailable", str(exc))
        return error(502, "kafka_rejected", str(exc))


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """EventBridge Scheduler target: the schedule's Input JSON is the event; raising makes it retry."""
    return _generate(event)
