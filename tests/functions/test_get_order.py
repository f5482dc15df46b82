"""get_order in-process, both adapters, against real PostgreSQL and memcached."""

from __future__ import annotations

import json
from typing import Any

import flask.testing
import functions_framework
import pytest

from devstack import services
from orders_core import bootstrap as runtime
from orders_core.adapters.postgres import OrderStore, PostgresSettings
from orders_core.config import Settings
from tests.support.events import FIXTURES, kafka_event, order_bytes

ORIGIN = "http://localhost:3000"


@pytest.fixture
def client(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source="functions/get_order/main.py").test_client()


@pytest.fixture
def ingest(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source="functions/ingest_order/main.py").test_client()


def test_order_comes_back_exactly_as_ingested_then_from_each_cache_tier(
    client: flask.testing.FlaskClient, stored_order: dict[str, Any]
) -> None:
    path = f"/orders/{stored_order['order_uid']}"
    first = client.get(path)
    assert first.status_code == 200 and first.json == stored_order and list(first.json) == list(stored_order)
    assert first.headers["X-Cache"] == "database"
    assert client.get(path).headers["X-Cache"] == "local"
    runtime.order_cache().local.clear()
    again = client.get(path)
    assert again.headers["X-Cache"] == "memcached" and again.data == first.data
    assert first.headers["Content-Type"].startswith("application/json")
    assert "immutable" in first.headers["Cache-Control"]


def test_unknown_uid_is_404_json_and_cached_negatively_then_found_after_ingest(
    client: flask.testing.FlaskClient,
    ingest: flask.testing.FlaskClient,
    make_order: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = make_order()
    path = f"/orders/{order['order_uid']}"
    missing = client.get(path)
    assert missing.status_code == 404
    assert missing.json == {"error": "not_found", "message": f"No order with order_uid {order['order_uid']}."}
    # The negative entry answers without the database: break the database and ask again.
    store = runtime.order_store()
    monkeypatch.setattr(store, "get_order_json", lambda uid: pytest.fail("miss storm reached Postgres"))
    assert client.get(path).status_code == 404
    monkeypatch.undo()
    # Ingest writes through and replaces the negative entry: found at once, not after the negative TTL.
    assert ingest.post("/", json=kafka_event([order_bytes(order)])).json["stored"] == 1
    found = client.get(path)
    assert found.status_code == 200 and found.json == order and found.headers["X-Cache"] == "memcached"


@pytest.mark.parametrize("uid", ["bad%20uid", "x" * 65, "semi;colon", "%3Cscript%3E", "..%2F..%2Fetc", "caf%C3%A9"])
def test_malformed_uid_is_400_without_touching_the_database(
    client: flask.testing.FlaskClient, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.order_store(), "get_order_json", lambda _: pytest.fail("database touched"))
    response = client.get(f"/orders/{uid}")
    assert response.status_code == 400 and response.json["error"] == "bad_request"
    assert "letters, digits" in response.json["message"]


def test_other_methods_are_405_with_allow(client: flask.testing.FlaskClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        response = getattr(client, method)("/orders/abc")
        assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
        assert response.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_etag_and_if_none_match_give_304_and_head_works(
    client: flask.testing.FlaskClient, stored_order: dict[str, Any]
) -> None:
    path = f"/orders/{stored_order['order_uid']}"
    first = client.get(path)
    not_modified = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    # RFC 9110: If-None-Match compares weakly, and * matches any stored order
    assert client.get(path, headers={"If-None-Match": f'"x", W/{first.headers["ETag"]}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get("/orders/never_stored_uid", headers={"If-None-Match": "*"}).status_code == 404
    head = client.head(path)
    assert head.status_code == 200 and head.data == b""
    assert int(head.headers["Content-Length"]) == len(first.data)


def test_cors_for_the_page_origin_only(client: flask.testing.FlaskClient) -> None:
    allowed = client.get("/health", headers={"Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    preflight = client.options("/orders/abc", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204 and "GET" in preflight.headers["Access-Control-Allow-Methods"]
    other = client.get("/health", headers={"Origin": "http://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_recent_orders_newest_first_and_bounded(
    client: flask.testing.FlaskClient, seed_orders: Any, make_order: Any
) -> None:
    newest = make_order(date_created="2099-01-02T00:00:00Z")
    older = make_order(date_created="2099-01-01T00:00:00Z")
    seed_orders([older, newest])
    listed = client.get("/orders?limit=2").json["orders"]
    assert [o["order_uid"] for o in listed] == [newest["order_uid"], older["order_uid"]]
    assert listed[0] == {
        "order_uid": newest["order_uid"],
        "track_number": newest["track_number"],
        "date_created": "2099-01-02T00:00:00Z",
        "amount": newest["payment"]["amount"],
        "currency": newest["payment"]["currency"],
        "item_count": len(newest["items"]),
    }
    # Recent means stored last, whatever date the client gave its order (a late delivery, a generated order)
    late = make_order(date_created="2001-01-01T00:00:00Z")
    seed_orders([late])
    assert client.get("/orders?limit=1").json["orders"][0]["order_uid"] == late["order_uid"]
    for bad in ("0", "101", "ten", "-1"):
        assert client.get(f"/orders?limit={bad}").status_code == 400


def test_unknown_path_is_json_404(client: flask.testing.FlaskClient) -> None:
    response = client.get("/admin")
    assert response.status_code == 404 and response.json["error"] == "not_found"


def test_health_reports_each_dependency(client: flask.testing.FlaskClient) -> None:
    assert client.get("/health").json == {"status": "ok", "postgres": "ok", "memcached": "ok"}


def test_health_names_no_host_and_no_driver_error(
    client: flask.testing.FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN both dependencies pointed at addresses where nothing answers
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(services.free_port()))
    monkeypatch.setenv("MEMCACHED_SERVERS", f"127.0.0.1:{services.free_port()}")
    runtime.reset()
    # WHEN health is asked
    answer = client.get("/health")
    # THEN it says what is wrong, not where or how
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "postgres": "unreachable", "memcached": "unreachable"}


def test_listing_can_be_turned_off_while_lookups_by_uid_still_work(
    client: flask.testing.FlaskClient, stored_order: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECENT_ORDERS_ENABLED", "false")
    runtime.reset()
    listing = client.get("/orders")
    assert listing.status_code == 404 and listing.json["error"] == "not_found"
    assert client.get(f"/orders/{stored_order['order_uid']}").status_code == 200


def test_memcached_down_answers_from_postgres_quickly_and_recovers(
    client: flask.testing.FlaskClient,
    stored_order: dict[str, Any],
    work_dir: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    own_memcached = services.memcached(work_dir).start()
    monkeypatch.setenv("MEMCACHED_SERVERS", f"127.0.0.1:{own_memcached.port}")
    monkeypatch.setenv("CACHE_LRU_SIZE", "0")
    runtime.reset()
    order = stored_order
    path = f"/orders/{order['order_uid']}"
    assert client.get(path).headers["X-Cache"] == "database"
    assert client.get(path).headers["X-Cache"] == "memcached"
    own_memcached.stop()
    down = client.get(path)
    assert down.status_code == 200 and down.json == order and down.headers["X-Cache"] == "database"
    assert client.get("/health").json["status"] == "degraded"
    own_memcached.start()
    services.wait_until(lambda: client.get(path).headers["X-Cache"] == "memcached", 15, "memcached recovery")
    own_memcached.stop()


def test_postgres_down_serves_cached_orders_and_503_for_others_then_recovers(
    client: flask.testing.FlaskClient, seed_orders: Any, make_order: Any, postgres: services.Service
) -> None:
    cached, uncached = make_order(), make_order()
    seed_orders([cached, uncached])
    assert client.get(f"/orders/{cached['order_uid']}").status_code == 200
    postgres.stop()
    try:
        assert client.get(f"/orders/{cached['order_uid']}").json == cached
        unavailable = client.get(f"/orders/{uncached['order_uid']}")
        assert unavailable.status_code == 503 and unavailable.json["error"] == "unavailable"
        assert "Traceback" not in unavailable.text
        assert client.get("/health").status_code == 503
    finally:
        postgres.start()
    services.wait_until(lambda: client.get(f"/orders/{uncached['order_uid']}").status_code == 200, 10, "recovery")
    assert client.get(f"/orders/{uncached['order_uid']}").json == uncached


def test_lambda_function_url_handler_serves_the_same_answers(stored_order: dict[str, Any], settings: Settings) -> None:
    from functions.get_order import main

    order = stored_order
    event = json.loads((FIXTURES / "function_url_event.json").read_text())
    event["rawPath"] = f"/orders/{order['order_uid']}"
    answer = main.handler(event, None)
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == order
    assert answer["headers"]["Access-Control-Allow-Origin"] == ORIGIN
    event["rawPath"] = "/orders/bad%20uid"
    assert main.handler(event, None)["statusCode"] == 400


@pytest.mark.parametrize("uid", ["abc%0A", "abc%0D%0A", "caf%C3%A9", "%00"])
def test_a_uid_memcached_cannot_take_is_a_400_from_the_lambda_handler_too(uid: str, settings: Settings) -> None:
    """Flask's router refuses a newline in a path by itself; the function URL hands it over, unquoted."""
    from functions.get_order import main

    event = json.loads((services.ROOT / "tests/fixtures/function_url_event.json").read_text())
    event["rawPath"] = f"/orders/{uid}"
    answer = main.handler(event, None)
    assert answer["statusCode"] == 400 and json.loads(answer["body"])["error"] == "bad_request"


def test_an_order_stored_under_older_rules_is_served_as_stored(
    client: flask.testing.FlaskClient, stored_order: dict[str, Any], store: Any
) -> None:
    # GIVEN a stored order that today's model refuses (stored before its e-mail rule was tightened)
    store._run(
        "UPDATE deliveries SET email = 'postmaster@localhost' WHERE order_uid = :uid", uid=stored_order["order_uid"]
    )
    runtime.order_cache().local.clear()
    # WHEN it is looked up, THEN it is served as it is stored, not answered with an error
    answer = client.get(f"/orders/{stored_order['order_uid']}")
    assert answer.status_code == 200
    assert answer.json == {**stored_order, "delivery": {**stored_order["delivery"], "email": "postmaster@localhost"}}
    assert list(answer.json) == list(stored_order)


def test_the_store_never_compiles_a_query_however_costly_the_planner_reckons_it(
    empty_database: PostgresSettings,
) -> None:
    """GIVEN a database where PostgreSQL would compile every query to machine code (its JIT, which it uses for
    a plan it reckons costly: the listing's query is, once the items table grew with no ANALYZE since; the
    compile took 150 ms the first time and 5 ms each after, for a query that runs in 0.3 ms) WHEN the store's
    connection runs a query THEN nothing is compiled."""
    admin = OrderStore(empty_database).connect()
    admin.run(f"ALTER DATABASE {empty_database.pg_database} SET jit_above_cost = 0")
    admin.close()
    conn = OrderStore(empty_database).connect()  # as the store connects
    plan = "\n".join(row[0] for row in conn.run("EXPLAIN (ANALYZE) SELECT count(*) FROM items"))
    conn.close()
    assert "JIT" not in plan, plan
