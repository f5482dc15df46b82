"""get_order as a plain ASGI application: the lookup core behind the least code a request can pass through.

functions-framework's ASGI app puts Starlette's routing, request and response objects and two middlewares in
front of the function: measured here (``docs/benchmarks.md``) that alone caps a cache hit at about a third of
what the same server answers with a fixed body. This adapter speaks ASGI directly, so any ASGI server runs it
(granian in ``make up`` and compose, uvicorn as well). Per request it does only what the answer needs:

* a hit (in-process or memcached) is answered on the event loop; whatever needs PostgreSQL runs in the
  worker's :class:`StorePool`, as in the functions-framework adapter;
* an order's response headers are encoded once per order and reused while it stays cached;
* its log line and metrics are a tuple appended to a buffer: :class:`InvocationBuffer` writes the lines
  and adds the counts to the Prometheus metrics twenty times a second (and when the worker stops), so a
  lookup costs the same whether anyone reads them or not. Answers of 500 and above are logged at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar
from urllib.parse import parse_qsl

from orders_core.config import Settings
from orders_core.domain.model import ORDER_UID_RE
from orders_core.domain.ports import Tier
from orders_core.http import logs, metrics
from orders_core.http.api import LookupService, Route, etag_of, server_timing
from orders_core.http.responses import HttpResponse, error

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# A flush holds the event loop while it formats its block: at 14,000 lookups a second a worker's 0.25 s of lines
# takes about 6 ms, which every request arriving meanwhile waits out (hot-hit p99 8-18 ms, against 4-15 ms at
# 0.05 s, eight paired rounds). Twenty short blocks a second cost no more than four long ones.
FLUSH_INTERVAL_S = 0.05
FLUSH_AT = 20_000  # lines waiting: written at once rather than growing for the rest of the second
MAX_LOGGED_PATH = 200
_REQUEST_ID = logs.REQUEST_ID_HEADER.lower()
_WANTED_HEADERS = frozenset((b"origin", b"if-none-match", _REQUEST_ID.encode()))
_ENCODED_ORDERS_MAX = 4096  # orders whose encoded headers are kept (a few hundred bytes each, no bodies)
_PLAIN = re.compile(rf"[A-Za-z0-9/_.~:-]{{0,{MAX_LOGGED_PATH}}}")  # nothing JSON escapes, and short
log = logging.getLogger("get_order")
T = TypeVar("T")


class StoreReads(Protocol):
    """What the pool needs of the lookup (``LookupService``)."""

    def answer_from_store(self, route: Route) -> HttpResponse: ...
    def busy(self, route: Route) -> HttpResponse: ...


class _Lane:
    """Threads off the event loop with a bounded queue: work that would wait behind ``queue_max`` others is
    refused at once (None) instead of piling up in memory. ``report`` is told the work in flight and the
    capacity as they change (the read queue's saturation)."""

    def __init__(
        self, threads: int, queue_max: int, name: str, report: Callable[[int, int], None] | None = None
    ) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._capacity = threads + queue_max
        self._pending = 0  # only touched on the event loop's thread: no lock
        self._report = report

    async def run(self, work: Callable[[], T]) -> T | None:
        if self._pending >= self._capacity:
            return None
        self._pending += 1
        if self._report is not None:
            self._report(self._pending, self._capacity)
        try:
            # run_in_executor does not carry context variables: the work logs as part of its request all the same.
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, contextvars.copy_context().run, work
            )
        finally:
            self._pending -= 1
            if self._report is not None:
                self._report(self._pending, self._capacity)


class StorePool:
    """The threads that read PostgreSQL for one worker's event loop, with a bounded queue: a read that would
    wait behind ``queue_max`` others is answered 503 at once instead of piling up in memory.

    ``/health`` has a thread of its own: behind a queue of lookups it would time out and report the instance
    unready exactly when it is busy serving."""

    HEALTH_QUEUE_MAX = 4  # a health check waits behind at most this many others, never behind lookups

    def __init__(self, threads: int, queue_max: int) -> None:
        self._reads = _Lane(threads, queue_max, "get-order-store", metrics.store_queue)
        self._health = _Lane(1, self.HEALTH_QUEUE_MAX, "get-order-health")

    async def answer(self, service: StoreReads, route: Route) -> HttpResponse:
        lane = self._health if route.resource == "health" else self._reads
        answer = await lane.run(functools.partial(service.answer_from_store, route))
        return service.busy(route) if answer is None else answer


# Collecting the metrics reads every worker's files (multiprocess mode): never on the event loop, where a
# flood of scrapes would stall every lookup. One thread a worker; scrapes beyond a few waiting answer 503.
METRICS_QUEUE_MAX = 4
_metrics_lane: _Lane | None = None


async def metrics_answer(method: str, multiproc_dir: str | None) -> HttpResponse:
    """``GET /metrics`` of an ASGI worker, collected off its event loop."""
    global _metrics_lane
    if _metrics_lane is None:
        _metrics_lane = _Lane(1, METRICS_QUEUE_MAX, "get-order-metrics")
    answer = await _metrics_lane.run(functools.partial(metrics.endpoint, method, multiproc_dir=multiproc_dir))
    if answer is None:
        return error(503, "unavailable", "Too many scrapes at once; try again shortly.", **{"Retry-After": "1"})
    return answer


# One lookup as the buffer keeps it: when it started (``time.perf_counter()``), method, path, the route it is
# counted under (``metrics.route_of``), status, the cache tier that had the order, seconds taken, request id.
Invocation = tuple[float, str, str, str, int, str | None, float, str | None]
_MILLIS = tuple(f"{n:03d}" for n in range(1000))  # "000" to "999": each line's milliseconds from a table, not a format


class InvocationBuffer:
    """Every lookup's log line and metrics, gathered in memory and written out in blocks.

    ``note`` appends one :data:`Invocation` (it is the list's own ``append``: no Python frame per lookup);
    ``flush`` formats the lines (JSON, the keys of the ``lookup answered`` line of the other adapters), writes
    them to ``stream`` in one write, and adds the counts to the Prometheus metrics in one pass. A request id
    the caller did not send is the worker's prefix and a sequence number, made only when the line is written.
    """

    def __init__(self, function: str, stream: TextIO | None) -> None:
        self._function = function
        self._stream = stream
        self._entries: list[Invocation] = []
        self.note: Callable[[Invocation], None] = self._entries.append
        self._prefix = f"{os.getpid():x}-{int(time.time()):x}"
        self._sequence = 0

    def __len__(self) -> int:
        return len(self._entries)

    def flush(self) -> None:
        entries = self._entries.copy()  # copied and emptied, not replaced: ``note`` is bound to this list
        self._entries.clear()
        if not entries:
            return
        _, _, _, routes, statuses, tiers, seconds, _ = zip(*entries, strict=True)
        metrics.count_request_block(routes, statuses, tiers, seconds)
        if self._stream is not None:
            # The wall clock of a lookup is its start on the monotonic clock plus their distance now: one
            # clock read per lookup rather than two. The distance only moves if the system clock is set.
            self._stream.write("".join(self._lines(entries, time.time() - time.perf_counter())))
            self._stream.flush()

    def _lines(self, entries: list[Invocation], wall_offset: float) -> list[str]:
        lines = []
        middle = f'","message":"lookup answered","function":{json.dumps(self._function)},"request_id":"'
        second, stamp = -1, ""
        plain = _PLAIN.fullmatch
        for started, method, path, _, status, tier, seconds, request_id in entries:
            at = started + wall_offset
            if int(at) != second:  # one strftime a second, not a line
                second = int(at)
                stamp = f'{{"level":"INFO","timestamp":"{time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))}.'
            if request_id is None:
                self._sequence += 1
                request_id = f"{self._prefix}-{self._sequence}"
            # Only a path may hold what JSON must escape (the others are checked or fixed words).
            path_json = f'"{path}"' if plain(path) else json.dumps(path[:MAX_LOGGED_PATH])
            tier_json = f'"{tier}"' if tier else "null"
            micros = int(seconds * 1_000_000)
            lines.append(
                f'{stamp}{_MILLIS[int((at - second) * 1000)]}Z{middle}{request_id}","method":"{method}",'
                f'"path":{path_json},"status":{status},"tier":{tier_json},'
                f'"duration_ms":{micros // 1000}.{_MILLIS[micros % 1000]}}}\n'
            )
        return lines


def open_invocation_log(target: str) -> TextIO | None:
    """Where the invocation lines go: ``-`` stderr, a path a file (appended, its folder made), empty nowhere."""
    if not target:
        return None
    if target == "-":
        return sys.stderr
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8", buffering=1 << 16)


_SERVER_TIMING = b"server-timing"
_LOCAL = Tier.LOCAL.value


def _timing(tier: str, seconds: float) -> tuple[bytes, bytes]:
    """The one header of an order answer that differs per request: its Server-Timing (``api.server_timing``)."""
    return _SERVER_TIMING, server_timing(tier, seconds).encode()


def _encode_headers(answer: HttpResponse, with_length: bool = True) -> list[tuple[bytes, bytes]]:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers.items()]
    if with_length:
        headers.append((b"content-length", str(len(answer.body)).encode()))
    return headers


class LookupApp:
    """The ASGI 3 application of get_order (HTTP and lifespan)."""

    def __init__(self, service: Callable[[], LookupService], function: str, settings: Callable[[], Settings]) -> None:
        self._service = service
        self._function = function
        self._settings = settings
        self._pool: StorePool | None = None
        self._invocations: InvocationBuffer | None = None
        self._note: Callable[[Invocation], None] = self._first_note
        self._flusher: asyncio.TimerHandle | None = None
        # The encoded headers of the orders this worker holds in process, by uid (``_order_headers``), and the
        # headers every answer from a tier shares, by tier.
        self._encoded: dict[str, list[tuple[bytes, bytes]]] = {}
        self._tier_headers: dict[str, list[tuple[bytes, bytes]]] = {}
        self._wanted: list[tuple[str, asyncio.Future[tuple[bytes | None, Tier | None]]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.flush()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @property
    def invocations(self) -> InvocationBuffer:
        """The buffer of this worker's lookups, made (and its log opened) on first use."""
        if self._invocations is None:
            settings = self._settings()
            target = settings.invocation_log if logging.getLevelName(settings.log_level) <= logging.INFO else ""
            self._invocations = InvocationBuffer(self._function, open_invocation_log(target))
        return self._invocations

    def _first_note(self, invocation: Invocation) -> None:
        """Opens the buffer; from then on ``_note`` is the buffer's own."""
        self._note = self.invocations.note
        self._note(invocation)

    def flush(self) -> None:
        """Write out the buffered lines and counts (a timer does this twenty times a second)."""
        if self._invocations is None:
            return
        try:
            self._invocations.flush()
        except Exception:  # a full disk must not take the lookups down with it
            log.exception("writing the invocation log failed")

    def _tick(self) -> None:
        self.flush()
        self._flusher = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._tick)

    async def _http(self, scope: Scope, send: Send) -> None:
        started = time.perf_counter()
        if self._flusher is None:  # first request of this worker's loop
            self._flusher = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self._tick)
        method, path = scope["method"], scope["path"]
        if path == metrics.PATH:
            self.flush()  # this worker's own counts are current; the others' at most a twentieth of a second old
            scrape = await metrics_answer(method, self._settings().prometheus_multiproc_dir)
            await self._send(send, method, scrape.status, _encode_headers(scrape), scrape.body)
            return
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in _WANTED_HEADERS:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        service = self._service()
        query_string = scope.get("query_string", b"")
        routed: Route | HttpResponse | None = None
        if not headers and not query_string and method == "GET" and path.startswith("/orders/"):
            # The hot path, a plain GET of an order this worker holds: its answer is the order and headers
            # encoded before; nothing else depends on the request (no CORS, no condition, no request id).
            uid = path[8:]
            prepared = self._encoded.get(uid)
            if prepared is not None and (order := service.local_order(uid)) is not None:
                # Timed once, up to the answer's hand-over to the server: its Server-Timing and its log line.
                seconds = time.perf_counter() - started
                await self._send(send, method, 200, [*prepared, _timing("local", seconds)], order)
                self._note((started, method, path, metrics.ORDER_ROUTE, 200, "local", seconds, None))
                return
            if ORDER_UID_RE.match(uid):  # a plain lookup of a well-formed uid: routed as the service would
                routed = Route("order", order_uid=uid)
        request_id = headers.get(_REQUEST_ID)
        if request_id is not None:
            request_id = logs.request_id_from(request_id)
        if routed is None:
            query = dict(parse_qsl(query_string.decode("latin-1"))) if query_string else {}
            routed = service.route(method, path, query, headers)
        encoded: list[tuple[bytes, bytes]] | None = None
        answer: HttpResponse | None = None
        status, body, tier_name = 500, b"", None  # set below, from the answer or the cached order
        if isinstance(routed, HttpResponse):
            answer = routed
        elif routed.resource == "order":
            uid = routed.order_uid
            local = service.local_order(uid)
            order, tier = (local, Tier.LOCAL) if local is not None else await self._from_memcached(service, uid)
            if tier is None:
                answer = await self._store_pool().answer(service, routed)
            elif order is not None and routed.origin is None and routed.if_none_match is None:
                status, body, tier_name = 200, order, str(tier)
                seconds = time.perf_counter() - started
                encoded = [*self._order_headers(service, routed, order, tier_name), _timing(tier_name, seconds)]
            else:
                answer = service.cached_answer(routed, order, tier)
        else:
            answer = await self._store_pool().answer(service, routed)
        if answer is not None:
            status, body, tier_name = answer.status, answer.body, answer.headers.get("X-Cache")
            encoded = _encode_headers(answer)
        await self._send(send, method, status, encoded or [], body)
        seconds = time.perf_counter() - started
        self._note((started, method, path, metrics.route_of(path), status, tier_name, seconds, request_id))
        if status >= 500:
            log.warning(
                "lookup answered",
                extra={
                    "function": self._function,
                    "request_id": request_id,
                    "method": method,
                    "path": path[:MAX_LOGGED_PATH],
                    "status": status,
                },
            )
        if len(self.invocations) >= FLUSH_AT:
            self.flush()

    def _order_headers(
        self, service: LookupService, routed: Route, order: bytes, tier: str
    ) -> list[tuple[bytes, bytes]]:
        """The headers of a plain answer with ``order`` from ``tier`` (its name: a Tier member would hash
        through Enum's Python-level ``__hash__``), but its Server-Timing: the tier's own, encoded once, with
        the order's ETag and length. Orders never change: an in-process order's are kept while it is (the hot
        path above sends them)."""
        local = tier == _LOCAL
        if local and (kept := self._encoded.get(routed.order_uid)) is not None:
            return kept
        common = self._tier_headers.get(tier)
        if common is None:
            fixed = _encode_headers(service.cached_answer(routed, order, Tier(tier)), with_length=False)
            common = self._tier_headers[tier] = [h for h in fixed if h[0] not in (b"etag", _SERVER_TIMING)]
        headers = [*common, (b"etag", etag_of(order).encode()), (b"content-length", str(len(order)).encode())]
        if local:
            if len(self._encoded) >= _ENCODED_ORDERS_MAX:
                self._encoded.clear()
            self._encoded[routed.order_uid] = headers
        return headers

    def _from_memcached(self, service: LookupService, uid: str) -> asyncio.Future[tuple[bytes | None, Tier | None]]:
        """What memcached holds for ``uid``, asked together with every other lookup that reaches this point
        in the same turn of the event loop: one round trip for all of them (memcached's multi-get)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bytes | None, Tier | None]] = loop.create_future()
        if not self._wanted:
            loop.call_soon(self._fetch_wanted, service)
        self._wanted.append((uid, future))
        return future

    def _fetch_wanted(self, service: LookupService) -> None:
        wanted, self._wanted = self._wanted, []
        found = service.cached_orders(list({uid for uid, _ in wanted}))
        for uid, future in wanted:
            if not future.done():
                future.set_result(found.get(uid, (None, None)))

    @staticmethod
    async def _send(send: Send, method: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def _store_pool(self) -> StorePool:
        if self._pool is None:  # one per worker process, made on its loop's first read
            settings = self._settings()
            self._pool = StorePool(settings.threads, settings.lookup_queue_max)
        return self._pool
