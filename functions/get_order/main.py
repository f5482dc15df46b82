"""get_order: orders by ``order_uid`` over HTTP, from the two-tier cache, falling back to PostgreSQL.

Four adapters over one core:

* ``http_entry`` for functions-framework's default server: Flask under gunicorn's threaded workers.
* ``asgi`` for functions-framework's ASGI server (the target the native runner and compose choose, with
  ``FUNCTION_TARGET=asgi``): Starlette under uvicorn workers, one event loop per worker. It answers cache
  hits, known misses and bad requests on the event loop (memcached calls have short timeouts) and runs
  whatever needs PostgreSQL in a pool of ``THREADS`` threads, so a slow query never stalls the loop.
* ``handler`` for an AWS Lambda function URL (payload format 2.0).
* ``app``, a plain ASGI application (``orders_core.http.asgi``) that any ASGI server runs: what ``make up``
  and compose serve, under granian, since functions-framework's ASGI app costs more than the lookup itself
  (docs/benchmarks.md). Its lines go to the invocation log, in blocks twenty times a second.

Each request logs one line (status, cache tier, duration) and is counted by route (``/orders/{order_uid}``,
``/health``, ``/ops``…; the lookup figures count order lookups only): ``GET /metrics`` locally (every gunicorn
worker's figures, with the PostgreSQL read queue in use), EMF on Lambda.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from orders_core import bootstrap as runtime
from orders_core import heap
from orders_core.config import get_settings
from orders_core.http import logs, metrics
from orders_core.http.asgi import LookupApp, StorePool, metrics_answer
from orders_core.http.limits import asgi_body_refusal, flask_body
from orders_core.http.on_lambda import LambdaConventions
from orders_core.http.responses import HttpResponse

T = TypeVar("T")

if TYPE_CHECKING:  # the server stacks are the local entries', not the Lambda handler's: never loaded for types
    import flask
    from starlette.requests import Request
    from starlette.responses import Response

# functions-framework serves ``http_entry`` and ``asgi`` without decorators (its default signature type is
# http), Flask makes a (body, status, headers) tuple a response, and Starlette's Response is imported on the
# ASGI server's first request. So importing this module loads no web framework: the Lambda handler starts
# without one.
FlaskAnswer = tuple[bytes, int, dict[str, str]]
_starlette_response: type[Response] | None = None


def _asgi_response(answer: HttpResponse) -> Response:
    global _starlette_response
    if _starlette_response is None:
        from starlette.responses import Response

        _starlette_response = Response
    return _starlette_response(answer.body, answer.status, answer.headers)


FUNCTION = "get_order"
MAX_LOGGED_PATH = 200
log = logging.getLogger(FUNCTION)
_settings = get_settings()  # the process's logging and Lambda conventions, set once at import
logs.configure_logging(_settings.log_format, _settings.log_level)
heap.settle()  # after the imports: what they loaded is left out of every collection
on_lambda = LambdaConventions(
    FUNCTION, _settings.powertools_metrics_namespace, _settings.log_level
)  # Powertools' Logger and Metrics for the Lambda handler


def _observe(method: str, path: str, answer: HttpResponse, started: float, emit: metrics.Emit) -> None:
    """Count the answer and log its one line."""
    seconds = time.perf_counter() - started
    tier = answer.headers.get("X-Cache")  # the tier that had the order; none for other answers
    emit(metrics.request_samples(path, answer.status, tier, seconds))
    level = logging.WARNING if answer.status >= 500 else logging.INFO
    if log.isEnabledFor(level):  # this runs on every lookup: no fields built for a line not written
        fields = {
            "method": method,
            "path": path[:MAX_LOGGED_PATH],
            "status": answer.status,
            "tier": tier,
            "duration_ms": round(seconds * 1000, 2),
        }
        log.log(level, "lookup answered", extra=fields)


def http_entry(request: flask.Request) -> FlaskAnswer:
    if request.path == metrics.PATH:
        started = time.perf_counter()
        answer = metrics.endpoint(request.method, multiproc_dir=get_settings().prometheus_multiproc_dir)
        metrics.to_prometheus(metrics.request_samples(request.path, answer.status, None, time.perf_counter() - started))
        return (answer.body, answer.status, answer.headers)
    started = time.perf_counter()
    with logs.invocation(FUNCTION, logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))):
        # No lookup reads a body; one sent all the same is bounded, as on every entry.
        refused = flask_body(request, get_settings().lookup_max_body_bytes)
        if isinstance(refused, HttpResponse):
            answer = refused
        else:
            answer = runtime.lookup_service().handle(
                request.method,
                request.path,
                request.args,
                {name.lower(): value for name, value in request.headers.items()},
            )
        _observe(request.method, request.path, answer, started, metrics.to_prometheus)
    return (answer.body, answer.status, answer.headers)


_store_pool: StorePool | None = None


def _pool() -> StorePool:
    global _store_pool
    if _store_pool is None:  # one per worker process, made on its loop's first miss
        settings = get_settings()
        _store_pool = StorePool(settings.threads, settings.lookup_queue_max)
    return _store_pool


async def asgi(request: Request) -> Response:
    scope = request.scope
    method, path = scope["method"], scope["path"]
    if path == metrics.PATH:
        started = time.perf_counter()
        answer = await metrics_answer(method, get_settings().prometheus_multiproc_dir)
        metrics.to_prometheus(metrics.request_samples(path, answer.status, None, time.perf_counter() - started))
        return _asgi_response(answer)
    started = time.perf_counter()
    with logs.invocation(FUNCTION, logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))):
        service = runtime.lookup_service()
        refused = await asgi_body_refusal(request, get_settings().lookup_max_body_bytes)
        routed = refused or service.route(method, path, request.query_params, request.headers)
        if isinstance(routed, HttpResponse):
            answer = routed
        else:
            answer = service.answer_from_cache(routed) or await _pool().answer(service, routed)
        _observe(method, path, answer, started, metrics.to_prometheus)
    return _asgi_response(answer)


@on_lambda.handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    http = event.get("requestContext", {}).get("http", {})
    method, path = http.get("method", "GET"), unquote(event.get("rawPath") or http.get("path") or "/")
    with logs.invocation(FUNCTION, logs.request_id_from(getattr(context, "aws_request_id", None))):
        answer = runtime.lookup_service().handle(
            method,
            path,
            event.get("queryStringParameters") or {},
            {name.lower(): value for name, value in (event.get("headers") or {}).items()},
        )
        _observe(method, path, answer, started, on_lambda.emit)
    return {
        "statusCode": answer.status,
        "headers": answer.headers,
        "body": answer.body.decode(),
        "isBase64Encoded": False,
    }


# Made at import, opened at its first request (settings, the invocation log): importing touches nothing.
app = LookupApp(runtime.lookup_service, FUNCTION, get_settings)
