"""The order page in real headless Chromium against the real get_order API (see conftest.py files).

The browser runs with locale en-US and time zone UTC, so dates and money have one expected spelling.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from tests.support.events import FIXTURES

FIXTURE = json.loads((FIXTURES / "order.json").read_text())
IMG = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"


def new_uid(prefix: str = "brw") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def make_order(uid: str | None = None, *, now: bool = False) -> dict[str, Any]:
    """The fixture order under a fresh uid; ``now`` dates it now so it tops the recent list."""
    order = copy.deepcopy(FIXTURE)
    order["order_uid"] = uid or new_uid()
    order["payment"]["transaction"] = order["order_uid"]
    if now:
        order["date_created"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return order


def field(page: Page, name: str) -> str:
    """Text of the element marked data-field=name in the order view, with narrow spaces made plain."""
    text = page.locator(f'#order-view [data-field="{name}"]').first.text_content() or ""
    return re.sub(r"[\u202f\u00a0]", " ", text).strip()


def order_uid_in_url(page: Page) -> str | None:
    return parse_qs(urlsplit(page.url).query).get("order_uid", [None])[0]


def expect_state(page: Page, state: str) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", state)


def expect_order_shown(page: Page, uid: str) -> None:
    expect_state(page, "ok")
    expect(page.locator("#order-view")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text(uid)


def lookup(page: Page, uid: str) -> None:
    box = page.get_by_label("Order UID")
    box.fill(uid)
    box.press("Enter")


def test_lookup_by_typing_uid_and_enter(
    open_app: Callable[..., Page], seed_orders: Callable[[list[dict[str, Any]]], Any], artifacts_dir: Path
) -> None:
    order = make_order()
    seed_orders([order])
    page = open_app()
    expect(page.locator("#empty-view")).to_be_visible()

    lookup(page, order["order_uid"])
    expect_order_shown(page, order["order_uid"])
    assert order_uid_in_url(page) == order["order_uid"]
    assert page.title() == f"Order {order['order_uid']} · Order lookup"

    # Header
    assert field(page, "track_number") == "WBILMTESTTRACK"
    assert field(page, "date_created") == "Nov 26, 2021, 6:22 AM"
    assert page.locator('#order-view [data-field="date_created"] time').get_attribute("datetime") == (
        "2021-11-26T06:22:19.000Z"
    )
    assert field(page, "customer_id") == "test"
    assert field(page, "delivery_service") == "meest"
    # Delivery card
    assert field(page, "delivery.name") == "Test Testov"
    assert field(page, "delivery.phone") == "+9720000000"
    assert field(page, "delivery.email") == "test@gmail.com"
    assert field(page, "delivery.city") == "Kiryat Mozkin"
    assert field(page, "delivery.region") == "Kraiot"
    assert field(page, "delivery.zip") == "2639809"
    assert field(page, "delivery.address") == "Ploshad Mira 15"
    # Payment card: amounts are cents of USD
    assert field(page, "payment.amount") == "$18.17"
    assert field(page, "payment.goods_total") == "$3.17"
    assert field(page, "payment.delivery_cost") == "$15.00"
    assert field(page, "payment.custom_fee") == "$0.00"
    assert field(page, "payment.provider") == "wbpay"
    assert field(page, "payment.bank") == "alpha"
    assert field(page, "payment.payment_dt") == "Nov 26, 2021, 6:22 AM"
    # Items table
    headers = page.locator("#order-view table thead th").all_text_contents()
    assert headers == ["Item", "Brand", "Price", "Sale", "Total", "Status"]
    rows = page.locator("#order-view table tbody tr")
    expect(rows).to_have_count(1)
    assert field(page, "item.name") == "Mascaras"
    assert field(page, "item.brand") == "Vivienne Sabo"
    assert field(page, "item.price") == "$4.53"
    assert field(page, "item.sale") == "\u221230%"  # U+2212 MINUS SIGN
    assert field(page, "item.total_price") == "$3.17"
    assert field(page, "item.status") == "202"

    page.screenshot(path=str(artifacts_dir / "order.png"), full_page=True)


@pytest.mark.parametrize(
    ("currency", "amounts", "shown"),
    [
        ("JPY", (1990, 1990, 0, 0), ["¥1,990", "¥1,990", "¥0", "¥0"]),  # the yen has no minor unit
        ("RUB", (129900, 129900, 0, 0), ["RUB 1,299.00", "RUB 1,299.00", "RUB 0.00", "RUB 0.00"]),
        ("EUR", (1817, 317, 1500, 0), ["€18.17", "€3.17", "€15.00", "€0.00"]),
    ],
)
def test_amounts_show_with_their_currency_decimals(
    open_app: Callable[..., Page],
    seed_orders: Callable[[list[dict[str, Any]]], Any],
    currency: str,
    amounts: tuple[int, int, int, int],
    shown: list[str],
) -> None:
    """Amounts are integers of the currency's minor unit: the page divides by its own number of decimals."""
    order = make_order()
    amount, goods_total, delivery_cost, custom_fee = amounts
    order["payment"].update(
        currency=currency, amount=amount, goods_total=goods_total, delivery_cost=delivery_cost, custom_fee=custom_fee
    )
    order["items"][0].update(price=goods_total, sale=0, total_price=goods_total)
    seed_orders([order])
    page = open_app(order_uid=order["order_uid"])
    expect_order_shown(page, order["order_uid"])
    names = ["payment.amount", "item.price", "payment.delivery_cost", "payment.custom_fee"]
    assert [field(page, name) for name in names] == shown


def test_order_is_readable_on_a_phone(
    browser: Browser,
    front_url: str,
    api_cors_checked: str,
    seed_orders: Callable[[list[dict[str, Any]]], Any],
    artifacts_dir: Path,
) -> None:
    order = make_order()
    seed_orders([order])
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    try:
        page = context.new_page()
        page.goto(f"{front_url}/?{urlencode({'api': api_cors_checked, 'order_uid': order['order_uid']})}")
        expect_order_shown(page, order["order_uid"])
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(artifacts_dir / "order-phone.png"), full_page=True)
    finally:
        context.close()


def test_click_recent_order_and_back_forward(
    open_app: Callable[..., Page], seed_orders: Callable[[list[dict[str, Any]]], Any]
) -> None:
    order = make_order(now=True)
    seed_orders([order])
    page = open_app()
    link = page.locator(f'#recent-list a[data-uid="{order["order_uid"]}"]')
    expect(link).to_be_visible()
    expect(link).to_contain_text("$18.17")

    link.click()
    expect_order_shown(page, order["order_uid"])
    assert order_uid_in_url(page) == order["order_uid"]
    expect(link).to_have_attribute("aria-current", "true")
    expect(page.locator("#order-view")).to_be_focused()
    expect(page.get_by_label("Order UID")).to_have_value(order["order_uid"])

    page.go_back()
    expect(page.locator("#empty-view")).to_be_visible()
    expect(page.locator("#order-view")).to_be_hidden()
    assert order_uid_in_url(page) is None

    page.go_forward()
    expect_order_shown(page, order["order_uid"])


def test_reload_and_history_keep_the_order_from_the_url(
    open_app: Callable[..., Page], seed_orders: Callable[[list[dict[str, Any]]], Any]
) -> None:
    first, second = make_order(), make_order()
    seed_orders([first, second])
    page = open_app(order_uid=first["order_uid"])
    expect_order_shown(page, first["order_uid"])

    lookup(page, second["order_uid"])
    expect_order_shown(page, second["order_uid"])

    page.reload()
    expect_order_shown(page, second["order_uid"])
    expect(page.get_by_label("Order UID")).to_have_value(second["order_uid"])

    page.go_back()
    expect_order_shown(page, first["order_uid"])
    expect(page.get_by_label("Order UID")).to_have_value(first["order_uid"])


def test_not_found_state(open_app: Callable[..., Page]) -> None:
    uid = new_uid("missing")
    page = open_app()
    lookup(page, uid)
    expect_state(page, "not-found")
    expect(page.locator("#status")).to_contain_text("Order not found")
    expect(page.locator("#status")).to_contain_text(uid)
    expect(page.locator("#order-view")).to_be_hidden()
    assert order_uid_in_url(page) == uid  # a shared link to a missing order says so too


def test_bad_input_state_is_caught_before_any_request(open_app: Callable[..., Page]) -> None:
    page = open_app()
    expect(page.locator("#recent-status")).not_to_have_attribute("data-state", "loading")
    lookups: list[str] = []
    page.on("request", lambda request: lookups.append(request.url) if "/orders/" in request.url else None)

    lookup(page, "bad uid!")
    expect_state(page, "bad-input")
    expect(page.locator("#status")).to_contain_text("“bad uid!” is not a valid order UID")
    expect(page.get_by_label("Order UID")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Order UID")).to_be_focused()
    assert order_uid_in_url(page) is None
    assert lookups == []

    lookup(page, "")
    expect(page.locator("#status")).to_contain_text("Enter an order UID")


def test_server_400_message_is_shown(open_app: Callable[..., Page], page: Page) -> None:
    message = "order_uid is reserved (from the server)"

    def answer(route: Route) -> None:
        route.fulfill(
            status=400,
            headers={"Access-Control-Allow-Origin": "*"},
            content_type="application/json",
            body=json.dumps({"error": "bad_request", "message": message}),
        )

    page.route(re.compile(r".*/orders/server_rejects$"), answer)
    open_app(order_uid="server_rejects")
    expect_state(page, "bad-input")
    expect(page.locator("#status")).to_contain_text(message)


def test_unavailable_state(open_app: Callable[..., Page], page: Page) -> None:
    def answer(route: Route) -> None:
        route.fulfill(
            status=503,
            headers={"Access-Control-Allow-Origin": "*"},
            content_type="application/json",
            body=json.dumps({"error": "unavailable", "message": "database is down"}),
        )

    page.route(re.compile(r".*/orders/[^?]+$"), answer)
    open_app(order_uid=new_uid())
    expect_state(page, "unavailable")
    expect(page.locator("#status")).to_contain_text("Service unavailable")
    expect(page.locator("#status")).to_contain_text("database is down")


def test_network_error_state(open_app: Callable[..., Page], closed_url: str) -> None:
    page = open_app(api=closed_url)
    expect(page.locator("#recent-status")).to_have_attribute("data-state", "error")
    lookup(page, new_uid())
    expect_state(page, "network")
    expect(page.locator("#status")).to_contain_text("Could not reach the order service")
    expect(page.locator("#order-view")).to_be_hidden()


def test_html_in_order_data_is_shown_as_text(
    open_app: Callable[..., Page], seed_orders: Callable[[list[dict[str, Any]]], Any]
) -> None:
    order = make_order(now=True)
    order["track_number"] = IMG
    order["customer_id"] = SCRIPT
    order["delivery_service"] = IMG
    order["delivery"].update(name=IMG, address=SCRIPT, city=IMG, region=SCRIPT)
    order["payment"].update(provider=SCRIPT, bank=IMG)
    order["items"][0].update(name=SCRIPT, brand=IMG, track_number=IMG)
    seed_orders([order])

    page = open_app()
    recent = page.locator(f'#recent-list a[data-uid="{order["order_uid"]}"] .recent__track')
    expect(recent).to_have_text(IMG)
    lookup(page, order["order_uid"])
    expect_order_shown(page, order["order_uid"])

    expected = {
        "track_number": IMG,
        "customer_id": SCRIPT,
        "delivery_service": IMG,
        "delivery.name": IMG,
        "delivery.address": SCRIPT,
        "delivery.city": IMG,
        "delivery.region": SCRIPT,
        "payment.provider": SCRIPT,
        "payment.bank": IMG,
        "item.name": SCRIPT,
        "item.brand": IMG,
    }
    for name, text in expected.items():
        assert page.locator(f'#order-view [data-field="{name}"]').first.text_content() == text, name
    injected = "#order-view img, #order-view script, #recent-list img, #recent-list script"
    assert page.locator(injected).count() == 0
    page.wait_for_timeout(300)  # give a would-be onerror handler time to run
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_html_in_the_url_uid_is_shown_as_text(open_app: Callable[..., Page]) -> None:
    page = open_app(order_uid=IMG)
    expect_state(page, "bad-input")
    expect(page.locator("#status .status__message")).to_contain_text(IMG)
    expect(page.get_by_label("Order UID")).to_have_value(IMG)
    assert page.locator("#status img").count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__pwned") == "undefined"
