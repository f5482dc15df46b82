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
  (docs/benchmarks.md). Its lines go to the invocation log, in blocks four times a second.

Each request logs one line (status, cache tier, duration) and is counted by route (``/orders/{order_uid}``,
``/health``, ``/ops``…; the lookup figures count order lookups only): ``GET /metrics`` locally (every gunicorn
worker's figures, with the PostgreSQL read queue in use), EMF on Lambda.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import unquote

from orders_core import bootstrap as runtime
from orders_core.config import get_settings
from orders_core.http import logs, metrics
from orders_core.http.api import Route
from orders_core.http.asgi import LookupApp
from orders_core.http.limits import asgi_body_refusal, flask_body
from orders_core.http.on_lambda import LambdaConventions
from orders_core.http.responses import HttpResponse, error

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


class StoreReads(Protocol):
    """What the pool needs of the lookup (``LookupService``)."""

    def answer_from_store(self, route: Route) -> HttpResponse: ...
    def busy(self, route: Route) -> HttpResponse: ...


class _Lane:
    """Threads off the event loop with a bounded queue: work that would wait behind ``queue_max`` others is
    refused at once (None) instead of piling up in memory."""

    def __init__(self, threads: int, queue_max: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._capacity = threads + queue_max
        self._pending = 0  # only touched on the event loop's thread: no lock

    async def run(self, work: Callable[[], T]) -> T | None:
        if self._pending >= self._capacity:
            return None
        self._pending += 1
        metrics.store_queue(self._pending, self._capacity)
        try:
            # run_in_executor does not carry context variables: the work logs as part of its request all the same.
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, contextvars.copy_context().run, work
            )
        finally:
            self._pending -= 1
            metrics.store_queue(self._pending, self._capacity)


class StorePool:
    """The threads that read PostgreSQL for one worker's event loop, with a bounded queue: a read that would
    wait behind ``lookup_queue_max`` others is answered 503 at once instead of piling up in memory.

    ``/health`` has a thread of its own: behind a queue of lookups it would time out and report the instance
    unready exactly when it is busy serving."""

    HEALTH_QUEUE_MAX = 4  # a health check waits behind at most this many others, never behind lookups

    def __init__(self, threads: int, queue_max: int) -> None:
        self._reads = _Lane(threads, queue_max, "get-order-store")
        self._health = _Lane(1, self.HEALTH_QUEUE_MAX, "get-order-health")

    async def answer(self, service: StoreReads, route: Route) -> HttpResponse:
        lane = self._health if route.resource == "health" else self._reads
        answer = await lane.run(functools.partial(service.answer_from_store, route))
        return service.busy(route) if answer is None else answer


_store_pool: StorePool | None = None
# Collecting the metrics reads every worker's files (multiprocess mode): never on the event loop, where a
# flood of scrapes would stall every lookup. One thread; scrapes beyond a few waiting answer 503.
_metrics_lane: _Lane | None = None
METRICS_QUEUE_MAX = 4


def _pool() -> StorePool:
    global _store_pool
    if _store_pool is None:  # one per worker process, made on its loop's first miss
        settings = get_settings()
        _store_pool = StorePool(settings.threads, settings.lookup_queue_max)
    return _store_pool


async def _metrics_answer(method: str) -> HttpResponse:
    global _metrics_lane
    if _metrics_lane is None:
        _metrics_lane = _Lane(1, METRICS_QUEUE_MAX, "get-order-metrics")
    answer = await _metrics_lane.run(functools.partial(metrics.endpoint, method))
    if answer is None:
        return error(503, "unavailable", "Too many scrapes at once; try again shortly.", **{"Retry-After": "1"})
    return answer


async def asgi(request: Request) -> Response:
    scope = request.scope
    method, path = scope["method"], scope["path"]
    if path == metrics.PATH:
        started = time.perf_counter()
        answer = await _metrics_answer(method)
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
