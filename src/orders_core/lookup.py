"""The lookup API, independent of how the request arrived (functions-framework or a Lambda function URL).

Routes: ``GET /orders/{order_uid}``, ``GET /orders?limit=N``, ``GET /health``; HEAD and CORS preflight on
each. Every error is JSON ``{"error", "message"}``; no stack trace ever reaches the client.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .cache import OrderCache, Tier
from .config import Settings
from .model import ORDER_UID_RE
from .storage import OrderStore, StoreUnavailable

log = logging.getLogger(__name__)

ORDER_CACHE_CONTROL = "public, max-age=31536000, immutable"  # an order never changes once stored
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
DEFAULT_RECENT = 20
# What a request may use: caches and PostgreSQL (``handle``), the caches only, or PostgreSQL only.
_ANY, _CACHED, _UNCACHED = 0, 1, 2


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, payload: Any, **headers: str) -> HttpResponse:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return HttpResponse(status, body, {"Content-Type": "application/json; charset=utf-8", **headers})


def error(status: int, code: str, message: str, **headers: str) -> HttpResponse:
    return _json(status, {"error": code, "message": message}, **{"Cache-Control": "no-store", **headers})


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class LookupService:
    def __init__(self, settings: Settings, store: OrderStore, cache: OrderCache) -> None:
        self._settings = settings
        self._store = store
        self._cache = cache
        self._cors_origins = settings.cors_origins  # a property that parses the setting: once, not per request

    def handle(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> HttpResponse:
        """Answer one request; ``headers`` keys are lower-case. May wait on PostgreSQL."""
        response = self._handle(method, path, query, headers, _ANY)
        assert response is not None  # _ANY always answers
        return response

    def handle_cached(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> HttpResponse | None:
        """:meth:`handle`'s answer when it needs no PostgreSQL (a cache hit, a known miss, a bad request), else None.

        For an event loop: this never waits longer than the memcached timeout. After None,
        :meth:`handle_uncached` (in a thread) gives the answer without asking the caches again.
        """
        return self._handle(method, path, query, headers, _CACHED)

    def handle_uncached(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> HttpResponse:
        """:meth:`handle` for a request :meth:`handle_cached` could not answer: an order is read from PostgreSQL
        (and cached) without asking the caches first."""
        response = self._handle(method, path, query, headers, _UNCACHED)
        assert response is not None  # _UNCACHED always answers
        return response

    def _handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], phase: int
    ) -> HttpResponse | None:
        try:
            response = self._route(method.upper(), path, query, headers, phase)
        except Exception:
            log.exception("lookup failed: %s %s", method, path)
            response = error(500, "internal", "The server failed to answer; please try again.")
        if response is not None:
            self._add_cors(response, headers.get("origin"))
        return response  # HEAD: the HTTP layer drops the body and keeps its length

    def _route(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], phase: int
    ) -> HttpResponse | None:
        path = "/" + path.strip("/")
        if path == "/health":
            kind = "health"
        elif path == "/orders":
            kind = "recent"
        elif path.startswith("/orders/"):
            kind = "order"
        else:
            return error(404, "not_found", f"No such endpoint: {path}. Try /orders/{{order_uid}}.")
        if method == "OPTIONS":
            return HttpResponse(204, headers={"Allow": ALLOWED_METHODS})
        if method not in ("GET", "HEAD"):
            return error(405, "method_not_allowed", f"{method} is not allowed here.", Allow=ALLOWED_METHODS)
        if kind == "order":
            return self._order(path.removeprefix("/orders/"), headers.get("if-none-match"), phase)
        if phase == _CACHED:
            return None  # health and recent ask PostgreSQL
        if kind == "health":
            return self.health()
        return self.recent(query.get("limit"))

    def order(self, order_uid: str, if_none_match: str | None = None) -> HttpResponse:
        response = self._order(order_uid, if_none_match, _ANY)
        assert response is not None  # _ANY always answers
        return response

    def _order(self, order_uid: str, if_none_match: str | None, phase: int) -> HttpResponse | None:
        if not ORDER_UID_RE.match(order_uid):
            return error(
                400,
                "bad_request",
                "order_uid must be 1 to 64 characters: letters, digits, '-' or '_'.",
            )
        body, tier = self._cache.get(order_uid) if phase != _UNCACHED else (None, None)
        if body is None and tier is Tier.MEMCACHED:
            return self._not_found(order_uid)
        if body is None:
            if phase == _CACHED:
                return None
            try:
                body = self._store.get_order_json(order_uid)
            except StoreUnavailable:
                log.warning("store unavailable for %s", order_uid)
                return error(503, "unavailable", "Orders cannot be read right now; try again shortly.",
                             **{"Retry-After": "5"})  # fmt: skip
            tier = Tier.DATABASE
            if body is None:
                self._cache.put_missing(order_uid)
                return self._not_found(order_uid)
            self._cache.put(order_uid, body)
        etag = etag_of(body)
        headers = {"ETag": etag, "Cache-Control": ORDER_CACHE_CONTROL, "X-Cache": str(tier)}
        if if_none_match and etag in (tag.strip() for tag in if_none_match.split(",")):
            return HttpResponse(304, headers=headers)
        return HttpResponse(200, body, {"Content-Type": "application/json; charset=utf-8", **headers})

    def _not_found(self, order_uid: str) -> HttpResponse:
        return error(404, "not_found", f"No order with order_uid {order_uid}.",
                     **{"Cache-Control": f"public, max-age={self._settings.cache_negative_ttl_s}"})  # fmt: skip

    def recent(self, limit_text: str | None) -> HttpResponse:
        bound = self._settings.recent_orders_max
        try:
            limit = DEFAULT_RECENT if limit_text in (None, "") else int(limit_text)
        except ValueError:
            limit = -1
        if not 1 <= limit <= bound:
            return error(400, "bad_request", f"limit must be a whole number from 1 to {bound}.")
        try:
            orders = self._store.recent_orders(limit)
        except StoreUnavailable:
            return error(503, "unavailable", "Orders cannot be listed right now; try again shortly.")
        return _json(200, {"orders": [asdict(o) for o in orders]}, **{"Cache-Control": "no-cache"})

    def health(self) -> HttpResponse:
        try:
            self._store.ping()
            postgres = "ok"
        except StoreUnavailable as exc:
            postgres = f"unreachable: {exc}"
        memcached = self._cache.health()
        healthy = postgres == "ok"
        status = "ok" if healthy and memcached in ("ok", "disabled") else "degraded" if healthy else "unavailable"
        return _json(200 if healthy else 503, {"status": status, "postgres": postgres, "memcached": memcached},
                     **{"Cache-Control": "no-store"})  # fmt: skip

    def _add_cors(self, response: HttpResponse, origin: str | None) -> None:
        allowed = self._cors_origins
        if origin and (origin in allowed or "*" in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = "If-None-Match, Content-Type"
            response.headers["Access-Control-Expose-Headers"] = "ETag, X-Cache"
            response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"
