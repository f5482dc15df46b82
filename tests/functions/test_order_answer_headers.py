"""What an order answer tells the browser besides the order: which tier served it and how long the server took
(``Server-Timing``, readable by the page's script), and that only the reader's own browser may keep it."""

from __future__ import annotations

import re
from typing import Any

import flask.testing
import functions_framework
import pytest

from orders_core import bootstrap
from orders_core.config import Settings

ORIGIN = "http://localhost:3000"  # a page origin the default CORS_ALLOW_ORIGINS lets read answers
TIMING = re.compile(r'^tier;desc="(?P<tier>[a-z]+)", app;dur=(?P<ms>\d+\.\d+)$')


@pytest.fixture
def client(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source="functions/get_order/main.py").test_client()


def served_by(answer: Any) -> str:
    """The tier ``Server-Timing`` names, after checking the header's form and that the page may read it."""
    timing = TIMING.match(answer.headers["Server-Timing"])
    assert timing, answer.headers["Server-Timing"]
    assert float(timing["ms"]) >= 0
    exposed = {name.strip().lower() for name in answer.headers["Access-Control-Expose-Headers"].split(",")}
    assert "server-timing" in exposed
    return timing["tier"]


def test_server_timing_names_the_database_then_memory_then_memcached(
    client: flask.testing.FlaskClient, stored_order: dict[str, Any]
) -> None:
    path, origin = f"/orders/{stored_order['order_uid']}", {"Origin": ORIGIN}
    # GIVEN an order in PostgreSQL only: the first read comes from the database
    first = client.get(path, headers=origin)
    assert first.status_code == 200 and served_by(first) == "database" == first.headers["X-Cache"]
    # WHEN asked again THEN this process's memory has it
    again = client.get(path, headers=origin)
    assert served_by(again) == "local" == again.headers["X-Cache"]
    # WHEN this process forgets it (another worker asking) THEN memcached has it
    bootstrap.order_cache().local.clear()
    shared = client.get(path, headers=origin)
    assert served_by(shared) == "memcached" == shared.headers["X-Cache"]
    # AND a conditional request that matches says the same on its 304
    unchanged = client.get(path, headers={**origin, "If-None-Match": first.headers["ETag"]})
    assert unchanged.status_code == 304 and served_by(unchanged) == "local"


def test_a_missing_order_says_which_tier_knew_it_was_missing(
    client: flask.testing.FlaskClient, make_order: Any
) -> None:
    path, origin = f"/orders/{make_order()['order_uid']}", {"Origin": ORIGIN}
    first = client.get(path, headers=origin)
    assert first.status_code == 404 and served_by(first) == "database"
    again = client.get(path, headers=origin)
    assert again.status_code == 404 and served_by(again) == "memcached"


def test_orders_and_misses_may_be_kept_by_the_browser_only(
    client: flask.testing.FlaskClient, stored_order: dict[str, Any], make_order: Any, settings: Settings
) -> None:
    # Orders hold names, addresses and phone numbers: a shared cache (proxy, CDN) must not keep them.
    found = client.get(f"/orders/{stored_order['order_uid']}")
    assert found.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    missing = client.get(f"/orders/{make_order()['order_uid']}")
    assert missing.status_code == 404
    assert missing.headers["Cache-Control"] == f"private, max-age={settings.cache_negative_ttl_s}"
