"""generate_orders: thin HTTP (functions-framework) and EventBridge Scheduler adapters over the core."""

from __future__ import annotations

import json
from typing import Any

import functions_framework
from pydantic import ValidationError

from orders_core.generator import GenerateRequest, ProduceError, describe_request_error, produce_orders


def _generate(payload: Any) -> dict[str, Any]:
    """Validate the request and produce; raises ``ValidationError`` or ``ProduceError``."""
    request = GenerateRequest.model_validate({} if payload is None else payload)
    return produce_orders(request.count, request.seed, request.invalid_ratio).as_response()


def _error(status: int, error: str, message: str) -> tuple[dict[str, str], int]:
    return {"error": error, "message": message}, status


@functions_framework.http
def http_entry(request: Any) -> tuple[Any, int] | tuple[Any, int, dict[str, str]]:
    """POST ``application/json``, optionally ``{"count", "seed", "invalid_ratio"}`` -> 200 with what was produced."""
    if request.method != "POST":
        return {"error": "method_not_allowed", "message": "use POST"}, 405, {"Allow": "POST"}
    # Only JSON: a web page can POST text/plain, a form, or nothing to any address without asking first.
    if request.mimetype != "application/json":
        return _error(415, "unsupported_media_type", "POST the request as application/json")
    payload: Any = None
    if body := request.get_data().strip():
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            return _error(400, "bad_request", "the body must be a JSON object")
    try:
        return _generate(payload), 200
    except ValidationError as exc:
        return _error(400, "bad_request", describe_request_error(exc))
    except ProduceError as exc:
        if exc.unavailable:
            return _error(503, "kafka_unavailable", str(exc))
        return _error(502, "kafka_rejected", str(exc))


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """EventBridge Scheduler target: the schedule's Input JSON is the event; raising makes it retry."""
    return _generate(event)
