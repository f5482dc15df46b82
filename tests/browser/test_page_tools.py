"""What the page offers around an order: where each answer came from, copy buttons, the reader's own lookups,
no recent-orders panel where the API lists none; one main landmark, and nothing axe-core calls serious.

Real headless Chromium against the real get_order API (see conftest.py files).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from devstack import ROOT
from orders_core.config import Settings
from orders_core.http.api import LookupService
from orders_core.http.responses import HttpResponse
from tests.browser.conftest import serious_accessibility_violations
from tests.browser.test_page import expect_order_shown, expect_state, lookup, make_order, new_uid
from tests.fakes import FakeLookupCache, FakeOrderReader

HISTORY_KEY = "orders.lookups"  # where script.js keeps them: the tests read the store as another tab would
SERVED = "#order-view [data-field='served']"
Seed = Callable[[list[dict[str, Any]]], Any]


def listing_turned_off(page: Page, front_url: str) -> None:
    """Answer the page's ``GET /orders`` as an API with listing off does (the lookup core's own answer)."""
    settings = Settings(recent_orders_enabled=False, cors_allow_origins=front_url)
    core = LookupService(settings, FakeOrderReader(), FakeLookupCache())  # routing asks neither

    def answer(route: Route) -> None:
        off = core.route("GET", "/orders", {}, {"origin": front_url})
        assert isinstance(off, HttpResponse) and off.status == 404
        route.fulfill(status=off.status, headers=off.headers, body=off.body)

    page.route(re.compile(r".*/orders\?limit=\d+$"), answer)


def stored_history(page: Page) -> list[str]:
    return json.loads(page.evaluate(f"localStorage.getItem({HISTORY_KEY!r}) || '[]'"))


def history_uids(page: Page) -> list[str]:
    return page.locator("#history-list a").evaluate_all("links => links.map(link => link.dataset.uid)")


# ---------------------------------------------------------------- where the answer came from


def test_first_lookup_says_the_database_and_the_next_a_cache_with_the_servers_time(
    open_app: Callable[..., Page], seed_orders: Seed
) -> None:
    # GIVEN an order only PostgreSQL has
    order = make_order()
    seed_orders([order])
    page = open_app(order_uid=order["order_uid"])
    # THEN the first answer says it was read from the database, and how long the server took
    expect_order_shown(page, order["order_uid"])
    expect(page.locator(SERVED)).to_have_text(re.compile(r"^Served from the database in [\d.,]+ ms$"))
    expect(page.locator(SERVED)).to_have_attribute("data-tier", "database")
    # WHEN the reader looks it up again THEN one of the caches served it (whichever worker answered)
    lookup(page, order["order_uid"])
    expect(page.locator(SERVED)).to_have_text(re.compile(r"^Served from (memory cache|memcached) in [\d.,]+ ms$"))
    expect(page.locator("#status")).to_contain_text(re.compile(r"Served from (memory cache|memcached)"))


def test_a_missing_order_says_which_tier_knew(open_app: Callable[..., Page]) -> None:
    uid = new_uid("missing")
    page = open_app(order_uid=uid)
    expect_state(page, "not-found")
    expect(page.locator("#status [data-field='served']")).to_have_text(
        re.compile(r"^Answered by (the database|memcached) in [\d.,]+ ms$")
    )


# ---------------------------------------------------------------- copy buttons


def clipboard(page: Page) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


@pytest.mark.parametrize("clipboard_api", ["allowed", "refused"])
def test_copy_buttons_put_the_uid_the_track_number_and_the_json_on_the_clipboard(
    open_app: Callable[..., Page], page: Page, front_url: str, seed_orders: Seed, clipboard_api: str
) -> None:
    # GIVEN a shown order, the clipboard readable by the test; with clipboard_api "refused" the page's
    # navigator.clipboard.writeText fails, as it does without permission, and the page falls back
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=front_url)
    if clipboard_api == "refused":
        page.add_init_script("navigator.clipboard.writeText = () => Promise.reject(new DOMException('no'));")
    order = make_order()
    seed_orders([order])
    open_app(order_uid=order["order_uid"])
    expect_order_shown(page, order["order_uid"])

    for name, key, announced in [
        ("Copy order UID", "order_uid", "Order UID copied."),
        ("Copy track number", "track_number", "Track number copied."),
        ("Copy JSON", "json", "The order as JSON copied."),
    ]:
        # WHEN the reader presses a copy button THEN the clipboard holds the value, and the button says so
        page.get_by_role("button", name=name).click()
        button = page.locator(f"#order-view button[data-copy='{key}']")
        expect(button).to_have_text("Copied")
        expect(page.locator("#copy-status")).to_have_text(announced)
        copied = clipboard(page)
        assert (json.loads(copied) if key == "json" else copied) == (order if key == "json" else order[key])
        # AND the button takes its own name back after a moment
        expect(button).to_have_text(name)


# ---------------------------------------------------------------- your lookups


def test_lookups_are_remembered_newest_first_once_each_and_reopen_an_order(
    open_app: Callable[..., Page], seed_orders: Seed
) -> None:
    first, second = make_order(), make_order()
    seed_orders([first, second])
    page = open_app()
    expect(page.locator("#history")).to_be_hidden()
    # WHEN the reader looks up two orders, then the first again
    for order in (first, second, first):
        lookup(page, order["order_uid"])
        expect_order_shown(page, order["order_uid"])
    # THEN both are listed, the latest first, each once; and they outlive the page
    expect(page.locator("#history")).to_be_visible()
    assert history_uids(page) == [first["order_uid"], second["order_uid"]]
    page.reload()
    expect_order_shown(page, first["order_uid"])
    assert history_uids(page) == [first["order_uid"], second["order_uid"]]
    # WHEN one is clicked THEN that order is shown again
    page.locator(f"#history-list a[data-uid='{second['order_uid']}']").click()
    expect_order_shown(page, second["order_uid"])
    expect(page.locator(f"#history-list a[data-uid='{second['order_uid']}']")).to_have_attribute("aria-current", "true")
    assert history_uids(page) == [second["order_uid"], first["order_uid"]]
    # WHEN the reader clears the list THEN it is gone, from the page and from the browser's storage
    page.get_by_role("button", name="Clear your lookups").click()
    expect(page.locator("#history")).to_be_hidden()
    expect(page.get_by_label("Order UID")).to_be_focused()
    assert stored_history(page) == []
    open_app()
    expect(page.locator("#empty-view")).to_be_visible()
    expect(page.locator("#history")).to_be_hidden()


def test_lookups_keep_the_last_ten_and_drop_what_is_not_a_uid(
    open_app: Callable[..., Page], page: Page, seed_orders: Seed
) -> None:
    # GIVEN ten remembered uids and some entries no lookup would have made (another script, an older page)
    remembered = [new_uid("old") for _ in range(10)]
    planted = [*remembered[:5], '<img src=x onerror="window.__pwned=1">', 42, "bad uid", *remembered[5:]]
    page.add_init_script(f"localStorage.setItem({HISTORY_KEY!r}, {json.dumps(json.dumps(planted))})")
    order = make_order()
    seed_orders([order])
    # WHEN one more order is looked up
    open_app(order_uid=order["order_uid"])
    expect_order_shown(page, order["order_uid"])
    # THEN it comes first, the oldest falls off, and the rest is never shown
    assert history_uids(page) == [order["order_uid"], *remembered[:9]]
    assert stored_history(page) == history_uids(page)
    assert page.locator("#history-list img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


# ---------------------------------------------------------------- listing turned off


def test_no_recent_orders_panel_where_the_api_lists_none(
    open_app: Callable[..., Page], page: Page, front_url: str, stored_order: dict[str, Any]
) -> None:
    # GIVEN an API with listing turned off (the deployed default)
    listing_turned_off(page, front_url)
    open_app()
    # THEN the page offers no recent orders and shows no error about them: just the lookup
    expect(page.locator("#recent")).to_be_hidden()
    expect(page.locator("#empty-text")).not_to_contain_text("recent")
    expect(page.get_by_text("unavailable")).to_have_count(0)
    assert serious_accessibility_violations(page) == []
    # AND looking an order up works as ever, and lists it among the reader's own lookups
    lookup(page, stored_order["order_uid"])
    expect_order_shown(page, stored_order["order_uid"])
    expect(page.locator("#history")).to_be_visible()
    expect(page.locator("#recent")).to_be_hidden()


# ---------------------------------------------------------------- landmarks and axe-core


def test_one_main_landmark_in_either_view(open_app: Callable[..., Page]) -> None:
    page = open_app()
    expect(page.locator("main")).to_have_count(1)
    expect(page.get_by_role("main")).to_have_count(1)
    page.get_by_role("link", name="Ops").click()
    expect(page.locator("#ops-view")).to_be_visible()
    expect(page.get_by_role("main")).to_have_count(1)
    expect(page.get_by_role("main")).to_be_visible()


def test_axe_finds_nothing_serious_in_the_empty_order_and_missing_states(
    open_app: Callable[..., Page], page: Page, front_url: str, seed_orders: Seed
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=front_url)
    order = make_order(now=True)
    seed_orders([order])
    open_app()
    expect(page.locator(f"#recent-list a[data-uid='{order['order_uid']}']")).to_be_visible()
    assert serious_accessibility_violations(page) == []

    lookup(page, order["order_uid"])
    expect_order_shown(page, order["order_uid"])
    page.get_by_role("button", name="Copy order UID").click()
    expect(page.locator("#copy-status")).not_to_be_empty()
    page.locator("#order-view summary").click()  # the technical details open too
    assert serious_accessibility_violations(page) == []

    lookup(page, new_uid("missing"))
    expect_state(page, "not-found")
    assert serious_accessibility_violations(page) == []


# ---------------------------------------------------------------- configuration


def test_the_shipped_config_allows_no_api_link_and_the_local_server_adds_it(page: Page, front_url: str) -> None:
    shipped = (ROOT / "front" / "config.js").read_text()
    page.goto(f"{front_url}/no-such-page")  # a page of the origin without the lookup script
    assert page.evaluate(f"{shipped}; window.ORDERS_CONFIG.allowApiOverride") is False
    served = page.request.get(f"{front_url}/config.js").text()
    assert page.evaluate(f"{served}; window.ORDERS_CONFIG.allowApiOverride") is True
    assert served.startswith(shipped)  # the shipped settings, plus the one line
