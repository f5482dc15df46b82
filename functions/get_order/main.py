"""get_order: orders by ``order_uid`` over HTTP, from the two-tier cache, falling back to PostgreSQL.

Two adapters over one core: ``http_entry`` (functions-framework) and ``handler`` (an AWS Lambda function
URL, payload format 2.0).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import flask
import functions_framework

from orders_core import runtime
from orders_core.logs import configure_logging

configure_logging()


@functions_framework.http
def http_entry(request: flask.Request) -> flask.Response:
    answer = runtime.lookup_service().handle(
        request.method,
        request.path,
        request.args,
        {name.lower(): value for name, value in request.headers.items()},
    )
    return flask.Response(answer.body, status=answer.status, headers=answer.headers)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    http = event.get("requestContext", {}).get("http", {})
    answer = runtime.lookup_service().handle(
        http.get("method", "GET"),
        unquote(event.get("rawPath") or http.get("path") or "/"),
        event.get("queryStringParameters") or {},
        {name.lower(): value for name, value in (event.get("headers") or {}).items()},
    )
    return {
        "statusCode": answer.status,
        "headers": answer.headers,
        "body": answer.body.decode(),
        "isBase64Encoded": False,
    }
