"""Browser-test fixtures: the static page server (infra/native/front.sh), headless Chromium, a page per test.

Nothing here skips: without Chromium at ``CHROMIUM_PATH`` (default /usr/bin/chromium) the tests fail.
``get_order_url`` and ``seed_orders`` come from tests/conftest.py.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from axe_playwright_python.base import AXE_SCRIPT
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from devstack import ROOT, services

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def front_url(work_dir: Path) -> Iterator[str]:
    """Base URL of front/ served by infra/native/front.sh, as the native runner serves it."""
    service = services.front(work_dir).start()
    yield f"http://127.0.0.1:{service.port}"
    service.stop()


@pytest.fixture(scope="session")
def api_cors_checked(get_order_url: str, front_url: str) -> str:
    """The API base URL, after checking it lets the page's origin read its answers (else: a clear failure)."""
    request = urllib.request.Request(f"{get_order_url}/orders?limit=1", headers={"Origin": front_url})
    with urllib.request.urlopen(request, timeout=10) as response:
        allowed = response.headers.get("Access-Control-Allow-Origin")
    if allowed not in ("*", front_url):
        pytest.fail(
            f"get_order at {get_order_url} does not allow the page origin {front_url} "
            f"(Access-Control-Allow-Origin: {allowed!r}); the browser would block every answer"
        )
    return get_order_url


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    # Package scope: Playwright's sync API keeps an event loop running in this thread until it stops, and the
    # tests after these ones run their own (asyncio.run refuses to start inside a running loop).
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is required for the browser tests and was not found at {CHROMIUM}")
    instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page with a fixed locale and time zone, so formatted dates and money are predictable.

    Uncaught JavaScript errors on the page fail the test.
    """
    context = browser.new_context(locale="en-US", timezone_id="UTC", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    yield new_page
    context.close()
    assert errors == [], f"uncaught errors on the page: {errors}"


@pytest.fixture
def open_app(page: Page, front_url: str, api_cors_checked: str) -> Callable[..., Page]:
    """open_app(order_uid=None, api=None): load the page against the API (or ``api``) and return it."""

    def _open(order_uid: str | None = None, api: str | None = None) -> Page:
        params = {"api": api or api_cors_checked}
        if order_uid is not None:
            params["order_uid"] = order_uid
        page.goto(f"{front_url}/?{urlencode(params)}")
        return page

    return _open


@pytest.fixture
def closed_url() -> str:
    """A base URL where nothing listens."""
    return f"http://127.0.0.1:{services.free_port()}"


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def serious_accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each (rule: where)."""
    # The page's policy allows no script but its own: axe arrives through the debugging protocol, which the
    # policy does not govern, and checks only what is shown (hidden views are not announced either).
    page.evaluate(AXE_SCRIPT)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{violation['id']} ({violation['impact']}): {[node['target'] for node in violation['nodes']]}"
        for violation in results["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
