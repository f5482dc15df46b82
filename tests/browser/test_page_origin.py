"""The page talks to its configured API only: a crafted link cannot point it elsewhere in a deployment."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from playwright.sync_api import ConsoleMessage, Page, Route, expect


def serve_deployment_config(page: Page, api_base: str) -> None:
    """Serve config.js as a deployment would: a fixed API, no ``?api=`` override."""
    config = json.dumps({"apiBase": api_base, "allowApiOverride": False})

    def fulfil(route: Route) -> None:
        route.fulfill(content_type="text/javascript", body=f"window.ORDERS_CONFIG = {config};")

    page.route("**/config.js", fulfil)


def test_a_deployed_page_ignores_an_api_link_and_shows_the_real_order(
    page: Page, front_url: str, api_cors_checked: str, stored_order: dict[str, Any], closed_url: str
) -> None:
    # GIVEN a deployed page, and a crafted link that names another API
    serve_deployment_config(page, api_cors_checked)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    uid = stored_order["order_uid"]
    # WHEN someone opens it
    page.goto(f"{front_url}/?{urlencode({'api': closed_url, 'order_uid': uid})}")
    # THEN the order comes from the configured API, and the other one is never asked
    expect(page.locator("#status")).to_have_attribute("data-state", "ok")
    expect(page.get_by_role("heading", level=1)).to_have_text(uid)
    assert not [url for url in requested if url.startswith(closed_url)]


def test_the_page_cannot_connect_to_any_origin_but_its_api(page: Page, front_url: str, api_cors_checked: str) -> None:
    # GIVEN the page, configured for one API
    serve_deployment_config(page, api_cors_checked)
    violations: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", on_console)
    page.goto(front_url)
    expect(page.locator("#recent-list li").first).to_be_visible()
    # WHEN a script on it tries another origin that would answer (the page's own server, another port)
    outcome = page.evaluate(
        """async (url) => {
            try { await fetch(url); return "connected"; } catch { return "blocked"; }
        }""",
        f"{front_url}/config.js",
    )
    # THEN the browser refuses it by policy
    assert outcome == "blocked"
    assert violations, "the refusal should be a Content Security Policy violation"
