"""The lookup API, independent of how the request arrived (functions-framework or a Lambda function URL).

Routes: ``GET /orders/{order_uid}``, ``GET /orders?limit=N``, ``GET /health`` (readiness: PostgreSQL answers),
``GET /livez`` (liveness: the process answers, whatever its dependencies), ``GET /openapi.json``, ``GET /ops``
(the ops view's figures, when ``OPS_METRICS_URLS`` names sources); HEAD and
CORS preflight on each. Every error is JSON ``{"error", "message"}``; no stack trace ever reaches the client.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

from orders_core.domain.lookup import MISSING, Found, OrderLookup
from orders_core.domain.model import ORDER_UID_RE
from orders_core.domain.ports import OrderLookupCache, OrderReader, StoreUnavailable, Tier
from orders_core.http.openapi import openapi_document
from orders_core.http.ops import MetricsScraper
from orders_core.http.responses import JSON_TYPE, HttpResponse, error, json_response, method_not_allowed

log = logging.getLogger(__name__)

# An order never changes once stored, but it holds a person's name, address and phone: browsers may keep it,
# shared caches (proxies, CDNs) may not.
ORDER_CACHE_CONTROL = "private, max-age=31536000, immutable"
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
EXPOSED_HEADERS = "ETag, X-Cache, Server-Timing"  # what the page's script may read of an answer
# Server-Timing (W3C) on every order answer: the tier that answered (as X-Cache says it) and the milliseconds
# from routing to the answer, for the page and for any browser's network panel. Only the number is per request.
# Keyed by the plain string: a Tier member would hash through Enum's Python-level __hash__ on every answer.
_TIMING_PREFIX = {str(tier): f'tier;desc="{tier}", app;dur=' for tier in Tier}
DEFAULT_RECENT = 20
STATIC_PATHS = ("/openapi.json", "/livez")  # answered without data


def server_timing(tier: str, seconds: float) -> str:
    """The ``Server-Timing`` value of an answer from ``tier`` (its X-Cache value) that took ``seconds``."""
    return f"{_TIMING_PREFIX[tier]}{seconds * 1000:.2f}"


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and every lookup that misses the
# in-process tier makes one (about 1 µs against 0.2 here). Nothing changes a Route once made.
@dataclass(slots=True)
class Route:
    """A request that needs data: what it asks for, and what its answer depends on."""

    resource: Literal["order", "recent", "health", "ops"]
    origin: str | None = None
    order_uid: str = ""
    if_none_match: str | None = None
    limit: str | None = None
    # When it was routed: its Server-Timing counts from here, across the cache step, a wait for a thread and
    # the store step alike.
    started: float = field(default_factory=time.perf_counter, compare=False)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` matches any stored order; tags compare weakly (``W/"x"`` matches ``"x"``)."""
    if if_none_match.strip() == "*":
        return True
    return etag in (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))


def _internal_error(route: object) -> HttpResponse:
    log.exception("lookup failed: %s", route)
    return error(500, "internal", "The server failed to answer; please try again.")


@dataclass(frozen=True, slots=True)
class LookupSettings:
    """What the lookup API needs: who may call it from a page, what it lists, and where /ops reads from."""

    cors_origins: frozenset[str]
    recent_orders_enabled: bool
    recent_orders_max: int
    cache_negative_ttl_s: int
    ops_metrics_sources: dict[str, str]
    ops_scrape_timeout_s: float


class LookupService:
    """Answers in three steps: :meth:`route` (no I/O), :meth:`answer_from_cache` (memcached at most, with
    its short timeout: safe on an event loop), :meth:`answer_from_store` (PostgreSQL). :meth:`handle` runs
    them in turn; an ASGI server runs the last one in a thread."""

    def __init__(
        self, settings: LookupSettings, store: OrderReader, cache: OrderLookupCache, primary: OrderReader | None = None
    ) -> None:
        self._settings = settings
        self._store = store
        self._orders = OrderLookup(cache, store, primary)
        self._cache = cache
        self._cors_origins = settings.cors_origins  # a property that parses the setting: once, not per request
        # A miss is remembered for the negative TTL: as private as the order it stands for.
        self._not_found_cache_control = f"private, max-age={settings.cache_negative_ttl_s}"
        sources = settings.ops_metrics_sources
        self._ops = MetricsScraper(sources, settings.ops_scrape_timeout_s) if sources else None

    def handle(self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> HttpResponse:
        """Answer one request; ``headers`` keys are lower-case. May wait on PostgreSQL."""
        routed = self.route(method, path, query, headers)
        if isinstance(routed, HttpResponse):
            return routed
        return self.answer_from_cache(routed) or self.answer_from_store(routed)

    def route(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> Route | HttpResponse:
        """What the request asks for, or its whole answer when that needs no data (bad path, method or uid)."""
        origin = headers.get("origin")
        try:
            routed = self._route(method.upper(), "/" + path.strip("/"), query, headers)
        except Exception:
            routed = _internal_error((method, path))
        return self._with_cors(routed, origin) if isinstance(routed, HttpResponse) else routed

    def answer_from_cache(self, route: Route) -> HttpResponse | None:
        """The answer when a cache tier has it (the order, or that it does not exist), else None."""
        if route.resource != "order":
            return None  # health and recent orders always ask PostgreSQL; /ops waits on the scrape
        try:
            answer = self._order_from_cache(route)
        except Exception:
            answer = _internal_error(route)
        return None if answer is None else self._with_cors(answer, route.origin)

    def local_order(self, order_uid: str) -> bytes | None:
        """The order when the in-process tier holds it (a valid uid, already routed); never raises."""
        try:
            return self._cache.get_local(order_uid)
        except Exception:
            log.exception("in-process cache lookup of %s failed", order_uid)
            return None

    def cached_orders(self, order_uids: list[str]) -> dict[str, tuple[bytes | None, Tier]]:
        """For an adapter that gathers the lookups in flight: each uid a cache tier knows, with its order (or
        None: known missing) and the tier; one memcached round trip for them all.
        Never raises."""
        try:
            return self._cache.get_many(order_uids)
        except Exception:
            log.exception("cache lookup of %d orders failed", len(order_uids))
            return {}

    def cached_answer(self, route: Route, order: bytes | None, tier: Tier) -> HttpResponse:
        """The answer to ``route`` (an order) from what :meth:`cached_orders` found for it."""
        answer = self._not_found(route, tier) if order is None else self._order_answer(order, tier, route)
        return self._with_cors(answer, route.origin)

    def answer_from_store(self, route: Route) -> HttpResponse:
        """The answer from PostgreSQL, without asking the caches (an order read is then cached)."""
        try:
            if route.resource == "order":
                answer = self._order_from_store(route)
            elif route.resource == "recent":
                answer = self._recent(route.limit)
            elif route.resource == "ops" and self._ops is not None:
                answer = json_response(200, self._ops.snapshot(), **{"Cache-Control": "no-store"})
            else:
                answer = self._health()
        except Exception:
            answer = _internal_error(route)
        return self._with_cors(answer, route.origin)

    def busy(self, route: Route) -> HttpResponse:
        """The answer to a read that found too many others waiting for PostgreSQL."""
        answer = error(
            503,
            "unavailable",
            "Too many lookups are waiting for the database; try again shortly.",
            **{"Retry-After": "1"},
        )
        return self._with_cors(answer, route.origin)

    def _route(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> Route | HttpResponse:
        resources: dict[str, Literal["recent", "health", "ops"]] = {"/orders": "recent", "/health": "health"}
        if self._ops is not None:  # unconfigured, /ops is an unknown path like any other
            resources["/ops"] = "ops"
        if path not in resources and path not in STATIC_PATHS and not path.startswith("/orders/"):
            return error(404, "not_found", f"No such endpoint: {path}. Try /orders/{{order_uid}}.")
        if method == "OPTIONS":
            return HttpResponse(204, headers={"Allow": ALLOWED_METHODS})
        if method not in ("GET", "HEAD"):  # HEAD: the HTTP layer drops the body and keeps its length
            return method_not_allowed(method, ALLOWED_METHODS)
        origin = headers.get("origin")
        if path == "/openapi.json":
            return json_response(200, openapi_document(self._settings.recent_orders_max))
        if path == "/livez":  # no dependency asked: restarting the process would not mend PostgreSQL
            return json_response(200, {"status": "ok"}, **{"Cache-Control": "no-store"})
        if path == "/orders" and not self._settings.recent_orders_enabled:
            return error(404, "not_found", "Listing orders is turned off here; look an order up by its order_uid.")
        if path in resources:
            return Route(resources[path], origin, limit=query.get("limit"))
        order_uid = path.removeprefix("/orders/")
        if not ORDER_UID_RE.match(order_uid):
            return error(400, "bad_request", "order_uid must be 1 to 64 characters: letters, digits, '-' or '_'.")
        return Route("order", origin, order_uid, headers.get("if-none-match"))

    def _order_from_cache(self, route: Route) -> HttpResponse | None:
        found = self._orders.cached(route.order_uid)
        if isinstance(found, Found):
            return self._order_answer(found.body, found.tier, route)
        return self._not_found(route, Tier.MEMCACHED) if found is MISSING else None  # only memcached knows a miss

    def _order_from_store(self, route: Route) -> HttpResponse:
        order_uid = route.order_uid
        try:
            found = self._orders.stored(order_uid)
        except StoreUnavailable:
            log.warning("store unavailable for %s", order_uid)
            return error(
                503, "unavailable", "Orders cannot be read right now; try again shortly.", **{"Retry-After": "5"}
            )
        if isinstance(found, Found):
            return self._order_answer(found.body, found.tier, route)
        return self._not_found(route, Tier.DATABASE)

    def _order_answer(self, body: bytes, tier: Tier, route: Route) -> HttpResponse:
        etag, served_by = etag_of(body), str(tier)
        headers = {
            "ETag": etag,
            "Cache-Control": ORDER_CACHE_CONTROL,
            "X-Cache": served_by,
            "Server-Timing": server_timing(served_by, time.perf_counter() - route.started),
        }
        if route.if_none_match and _matches(route.if_none_match, etag):
            return HttpResponse(304, headers=headers)
        return HttpResponse(200, body, {"Content-Type": JSON_TYPE, **headers})

    def _not_found(self, route: Route, tier: Tier) -> HttpResponse:
        headers = {
            "Cache-Control": self._not_found_cache_control,
            "Server-Timing": server_timing(str(tier), time.perf_counter() - route.started),
        }
        return error(404, "not_found", f"No order with order_uid {route.order_uid}.", **headers)

    def _recent(self, limit_text: str | None) -> HttpResponse:
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
        return json_response(200, {"orders": [asdict(o) for o in orders]}, **{"Cache-Control": "no-cache"})

    def _health(self) -> HttpResponse:
        """Each dependency as ``ok`` or ``unreachable`` (``disabled`` memcached): host names and driver errors
        go to the log, never to whoever asks."""
        try:
            self._store.ping()
            postgres = "ok"
        except StoreUnavailable as exc:
            log.warning("health: PostgreSQL unreachable: %s", exc)
            postgres = "unreachable"
        memcached = self._cache.health()
        healthy = postgres == "ok"
        status = "ok" if healthy and memcached in ("ok", "disabled") else "degraded" if healthy else "unavailable"
        return json_response(
            200 if healthy else 503,
            {"status": status, "postgres": postgres, "memcached": memcached},
            **{"Cache-Control": "no-store"},
        )

    def _with_cors(self, response: HttpResponse, origin: str | None) -> HttpResponse:
        allowed = self._cors_origins
        if origin and (origin in allowed or "*" in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = "If-None-Match, Content-Type"
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.headers["Access-Control-Max-Age"] = "600"
        response.headers["Vary"] = "Origin"
        return response
