"""The README's pictures of the lookup page: ``docs/page-desktop.png`` (1280x800) and ``docs/page-phone.png``
(390x844), with real answers.

PostgreSQL and memcached on free ports, generated orders stored, get_order and the page's server started as the
native runner starts them, headless Chromium (``CHROMIUM_PATH``, default /usr/bin/chromium). Nothing of a running
``make up`` is touched. Run: ``.venv/bin/python -m devstack.screenshots``.
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlencode

from playwright.sync_api import Browser, expect, sync_playwright

from devstack import ROOT, services, stack
from orders_core.adapters.postgres import OrderStore, PostgresSettings
from orders_core.config import Settings, narrow
from orders_core.domain.model import parse_order
from orders_core.generator.builder import iter_orders

SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
SEED = 20261204  # the same orders on every run


def shoot(browser: Browser, page_url: str, looked_up: list[str], shown: str, size: str) -> None:
    """Look up ``looked_up`` then ``shown`` twice (its second answer comes from a cache), and save the view."""
    width, height = SIZES[size]
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": width, "height": height}, color_scheme="light"
    )
    page = context.new_page()
    page.goto(page_url)
    expect(page.locator("#recent-list li").first).to_be_visible()
    for uid in [*looked_up, shown, shown]:
        page.get_by_label("Order UID").fill(uid)
        page.get_by_label("Order UID").press("Enter")
        expect(page.locator("#status")).to_have_attribute("data-state", "ok")
        expect(page.get_by_role("heading", level=1)).to_have_text(uid)
    page.evaluate("window.scrollTo(0, 0)")
    page.get_by_label("Order UID").blur()
    page.screenshot(path=str(ROOT / "docs" / f"page-{size}.png"))
    context.close()


def main() -> None:
    with stack.running("postgres", "memcached", kind="screenshots") as (env, work, _services):
        orders = [parse_order(body) for _uid, body in iter_orders(12, seed=SEED)]
        OrderStore(narrow(Settings(), PostgresSettings)).store_orders(orders)
        # The featured order: one with a few items, so the table shows what it does.
        shown = next((o for o in orders if 2 <= len(o.content.items) <= 4), orders[-1]).order_uid
        looked_up = [o.order_uid for o in orders[:3] if o.order_uid != shown]
        get_order = services.function("get_order", env, work, {"CORS_ALLOW_ORIGINS": "*"}).start()
        front = services.front(work).start()
        try:
            page_url = f"http://127.0.0.1:{front.port}/?{urlencode({'api': f'http://127.0.0.1:{get_order.port}'})}"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
                    args=["--no-sandbox", "--disable-gpu"],
                )
                for size in SIZES:
                    shoot(browser, page_url, looked_up, shown, size)
                browser.close()
        finally:
            front.stop()
            get_order.stop()
    json.dump({size: f"docs/page-{size}.png" for size in SIZES}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
