"""get_order: orders by ``order_uid`` over HTTP, from the two-tier cache, falling back to PostgreSQL.

Three adapters over one core:

* ``http_entry`` for functions-framework's default server: Flask under gunicorn's threaded workers.
* ``asgi`` for functions-framework's ASGI server (the target the native runner and compose choose, with
  ``FUNCTION_TARGET=asgi``): Starlette under uvicorn workers, one event loop per worker. It answers cache
  hits, known misses and bad requests on the event loop (memcached calls have short timeouts) and runs
  whatever needs PostgreSQL in a pool of ``THREADS`` threads, so a slow query never stalls the loop.
* ``handler`` for an AWS Lambda function URL (payload format 2.0).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import flask
import functions_framework
import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from orders_core import runtime
from orders_core.config import get_settings
from orders_core.logs import configure_logging
from orders_core.responses import HttpResponse

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


_store_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _store_pool
    if _store_pool is None:  # one per worker process, made on its loop's first miss
        _store_pool = ThreadPoolExecutor(max_workers=get_settings().threads, thread_name_prefix="get-order-store")
    return _store_pool


@functions_framework.aio.http
async def asgi(request: Request) -> Response:
    scope = request.scope
    service = runtime.lookup_service()
    routed = service.route(scope["method"], scope["path"], request.query_params, request.headers)
    if isinstance(routed, HttpResponse):
        answer = routed
    else:
        answer = service.answer_from_cache(routed)
        if answer is None:  # PostgreSQL: in a thread, off the event loop
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(_pool(), service.answer_from_store, routed)
    return Response(answer.body, answer.status, answer.headers)


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
