"""get_order over real HTTP, started as the native runner starts it (functions-framework under gunicorn)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message
from typing import Any


def call(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive: servers may send them in lower case) and body."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_order_then_cache_hits_then_304(get_order_url: str, stored_order: dict[str, Any]) -> None:
    url = f"{get_order_url}/orders/{stored_order['order_uid']}"
    status, headers, body = call(url)
    assert status == 200 and json.loads(body) == stored_order
    assert headers["X-Cache"] == "database"
    tiers = {call(url)[1]["X-Cache"] for _ in range(6)}  # two workers: each fills its own LRU from memcached
    assert tiers <= {"local", "memcached"} and "local" in tiers
    assert call(url, **{"If-None-Match": headers["ETag"]})[0] == 304
    head_status, head_headers, head_body = call(url, "HEAD")
    assert head_status == 200 and head_body == b"" and int(head_headers["Content-Length"]) == len(body)


def test_errors_are_json_with_the_right_status(get_order_url: str) -> None:
    for path, method, status, code in [
        ("/orders/unknown-uid-123", "GET", 404, "not_found"),
        ("/orders/bad%20uid", "GET", 400, "bad_request"),
        ("/orders/abc%0A", "GET", 400, "bad_request"),  # Python's `$` matches before a final newline
        ("/orders/abc", "POST", 405, "method_not_allowed"),
        ("/orders?limit=1000", "GET", 400, "bad_request"),
    ]:
        got, headers, body = call(get_order_url + path, method)
        assert (got, json.loads(body)["error"]) == (status, code), path
        assert headers["Content-Type"].startswith("application/json")


def test_cors_preflight_and_health(get_order_url: str) -> None:
    status, headers, _ = call(
        f"{get_order_url}/orders/abc",
        "OPTIONS",
        Origin="http://127.0.0.1:3000",
        **{"Access-Control-Request-Method": "GET"},
    )
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    status, _, body = call(f"{get_order_url}/health")
    assert status == 200 and json.loads(body) == {"status": "ok", "postgres": "ok", "memcached": "ok"}
