"""get_order's plain ASGI app (what `make up` serves under granian), in-process against real PostgreSQL and
memcached: the same answers as the other adapters, lookups in flight sharing one memcached round trip, and
every lookup written to the invocation log and counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orders_core import bootstrap as runtime
from orders_core.config import Settings, get_settings
from orders_core.http.asgi import LookupApp


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


async def call(app: LookupApp, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    """One request through the ASGI interface, as a server makes it."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    await app(scope, receive, send)
    start, body = sent
    return Answer(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"])


@pytest.fixture
def app(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LookupApp:
    monkeypatch.setenv("INVOCATION_LOG", str(tmp_path / "invocations.log"))
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    runtime.reset()
    return LookupApp(runtime.lookup_service, "get_order", get_settings)


def lookups_counted(status: str) -> float:
    return REGISTRY.get_sample_value("orders_lookup_responses_total", {"status": status}) or 0.0


def test_an_order_comes_back_from_each_tier_with_the_headers_of_the_other_adapters(
    app: LookupApp, stored_order: dict[str, Any]
) -> None:
    async def scenario() -> list[Answer]:
        path = f"/orders/{stored_order['order_uid']}"
        answers = [await call(app, "GET", path), await call(app, "GET", path)]
        runtime.order_cache().local.clear()
        answers += [await call(app, "GET", path), await call(app, "GET", path), await call(app, "HEAD", path)]
        return answers

    database, local, memcached, local_again, head = asyncio.run(scenario())
    assert json.loads(database.body) == stored_order and database.status == 200
    assert [a.headers["x-cache"] for a in (database, local, memcached, local_again)] == [
        "database",
        "local",
        "memcached",
        "local",
    ]
    assert local.body == memcached.body == local_again.body == database.body
    per_request = {"x-cache", "server-timing"}  # the tier, and the time this answer took
    for answer in (local, memcached, local_again):
        assert {k: v for k, v in answer.headers.items() if k not in per_request} == {
            k: v for k, v in database.headers.items() if k not in per_request
        }
        assert answer.headers["server-timing"].startswith(f'tier;desc="{answer.headers["x-cache"]}", app;dur=')
    assert database.headers["content-length"] == str(len(database.body))
    assert "immutable" in database.headers["cache-control"] and database.headers["etag"].startswith('"')
    assert head.status == 200 and head.body == b"" and head.headers["content-length"] == str(len(database.body))


def test_conditional_cors_and_error_answers_are_those_of_the_core(app: LookupApp, stored_order: dict[str, Any]) -> None:
    async def scenario() -> list[Answer]:
        path = f"/orders/{stored_order['order_uid']}"
        first = await call(app, "GET", path)
        return [
            first,
            await call(app, "GET", path, {"If-None-Match": first.headers["etag"]}),
            await call(app, "GET", path, {"Origin": "http://localhost:3000"}),
            await call(app, "GET", "/orders/no-such-order"),
            await call(app, "GET", "/orders/bad%20uid"),
            await call(app, "POST", path),
            await call(app, "GET", "/orders?limit=0"),
        ]

    _, not_modified, cors, missing, malformed, post, bad_limit = asyncio.run(scenario())
    assert not_modified.status == 304 and not_modified.body == b""
    assert cors.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert missing.status == 404 and json.loads(missing.body)["error"] == "not_found"
    assert malformed.status == 400 and post.status == 405 and post.headers["allow"] == "GET, HEAD, OPTIONS"
    assert bad_limit.status in (400, 404)  # 404 where listing is turned off


def test_lookups_in_flight_ask_memcached_once_together(
    app: LookupApp,
    seed_orders: Callable[[list[dict[str, Any]]], None],
    make_order: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = [make_order() for _ in range(5)]
    seed_orders(orders)
    cache = runtime.order_cache()
    for order in orders:  # in memcached, not in this worker's memory
        cache.put(order["order_uid"], json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode())
    cache.local.clear()
    asked: list[list[str]] = []
    get_many = cache.get_many

    def spy(order_uids: list[str]) -> Any:
        asked.append(sorted(order_uids))
        return get_many(order_uids)

    monkeypatch.setattr(cache, "get_many", spy)

    async def scenario() -> list[Answer]:
        return list(await asyncio.gather(*(call(app, "GET", f"/orders/{o['order_uid']}") for o in orders)))

    answers = asyncio.run(scenario())
    assert [a.status for a in answers] == [200] * 5 and {a.headers["x-cache"] for a in answers} == {"memcached"}
    assert asked == [sorted(o["order_uid"] for o in orders)]


def test_every_lookup_is_written_to_the_invocation_log_and_counted_once_flushed(
    app: LookupApp, stored_order: dict[str, Any], tmp_path: Path
) -> None:
    before_ok, before_missing = lookups_counted("200"), lookups_counted("404")

    async def scenario() -> None:
        await call(app, "GET", f"/orders/{stored_order['order_uid']}", {"Function-Execution-Id": "asked-1"})
        await call(app, "GET", f"/orders/{stored_order['order_uid']}")
        await call(app, "GET", '/orders/"\nforged')

    asyncio.run(scenario())
    app.flush()
    lines = [json.loads(line) for line in (tmp_path / "invocations.log").read_text().splitlines()]
    assert {line["message"] for line in lines} == {"lookup answered"}
    assert [(line["status"], line["tier"]) for line in lines] == [(200, "database"), (200, "local"), (400, None)]
    assert lines[0]["request_id"] == "asked-1" and lines[1]["request_id"] != lines[2]["request_id"]
    assert lines[2]["path"] == '/orders/"\nforged' and {line["function"] for line in lines} == {"get_order"}
    assert lookups_counted("200") - before_ok == 2 and lookups_counted("404") == before_missing
