"""The page's ops view (#ops) in real headless Chromium, fed by a real get_order whose GET /ops scrapes stand-in
metric endpoints (real Prometheus text with the contract's names) whose counters rise between polls."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from devstack import services
from tests.support.metrics import Fleet, stand_ins

FIGURES = [
    "stored",
    "lookups",
    "hit-ratio",
    "lag",
    "lag-seconds",
    "dead-letters",
    "dead-letter-queue",
    "lookup-latency",
    "ingest-latency",
]
SLOW = 30_000  # ms: the page polls every 5 s and needs two answers for a rate


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    """Stand-ins whose counters keep rising, as a busy stack's do, while the module runs."""
    with stand_ins(3) as (ingest, lookup, trigger):
        fleet = Fleet(ingest, lookup, trigger)
        fleet.lag.labels("orders", "0").set(12)
        fleet.lag.labels("orders", "1").set(0)
        fleet.lag_seconds.labels("orders", "0").set(12)
        fleet.lag_seconds.labels("orders", "1").set(0)
        fleet.retrying.labels("orders", "1").set(1)
        fleet.letters_waiting.set(3)
        fleet.oldest_letter.set(90)
        stop = threading.Event()

        def busy() -> None:
            while not stop.wait(0.2):
                fleet.records.labels("stored").inc(40)
                fleet.lookups.labels("local").inc(30)
                fleet.lookups.labels("memcached").inc(9)
                fleet.lookups.labels("database").inc(1)
                fleet.dead_letters.labels("<b>invalid</b>").inc(1)
                for seconds in (0.002, 0.004, 0.008, 0.2):
                    fleet.lookup_seconds.observe(seconds)
                fleet.batch_seconds.observe(0.05)

        thread = threading.Thread(target=busy, daemon=True)
        thread.start()
        yield fleet
        stop.set()
        thread.join()


@pytest.fixture(scope="module")
def ops_api(stack_env: dict[str, str], work_dir: Path, fleet: Fleet) -> Iterator[str]:
    """get_order as the native runner starts it, its /ops scraping the stand-ins."""
    extra = {"CORS_ALLOW_ORIGINS": "*", "OPS_METRICS_URLS": fleet.urls()}
    service = services.function("get_order", stack_env, work_dir, extra).start()
    yield f"http://127.0.0.1:{service.port}"
    service.stop()


def open_ops(page: Page, front_url: str, api: str) -> Page:
    """The page at #ops against ``api``, polling every 2 s (config.js as a deployment would serve it)."""
    config = json.dumps({"apiBase": api, "allowApiOverride": False, "opsPollSeconds": 2})
    page.route(
        "**/config.js",
        lambda route: route.fulfill(content_type="text/javascript", body=f"window.ORDERS_CONFIG = {config};"),
    )
    page.goto(f"{front_url}/#ops")
    return page


def wait_for_polls(page: Page, count: int) -> None:
    for _ in range(count):
        page.wait_for_event("response", lambda response: response.url.endswith("/ops"), timeout=SLOW)


def luminance(colour: str) -> float:
    """Relative luminance (0 black to 1 white) of an ``rgb(r, g, b)`` or ``#rrggbb`` colour."""
    colour = colour.strip()
    if colour.startswith("#"):
        channels = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        channels = [int(c) for c in re.findall(r"\d+", colour)[:3]]
    linear = [(c / 255 / 12.92) if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def headline(page: Page, figure: str) -> str:
    return (page.locator(f'[data-figure="{figure}"] .ops-card__value').text_content() or "").replace("\u202f", " ")


def number_in(text: str) -> float:
    match = re.search(r"[\d.,]+", text)
    assert match, text
    return float(match.group().replace(",", ""))


def expect_rates(page: Page) -> None:
    expect(page.locator('[data-figure="stored"] .ops-card__value')).to_have_text(re.compile(r"/s$"), timeout=SLOW)
    assert number_in(headline(page, "stored")) > 0
    assert number_in(headline(page, "lookups")) > 0
    assert 0 < number_in(headline(page, "hit-ratio")) <= 100
    assert number_in(headline(page, "dead-letters")) > 0
    assert headline(page, "lookup-latency").startswith("p99 ") and number_in(headline(page, "lookup-latency")) > 0
    assert headline(page, "ingest-latency").endswith(" ms")


def test_ops_view_shows_live_rates_and_a_chart_per_figure(
    page: Page, front_url: str, ops_api: str, artifacts_dir: Path
) -> None:
    open_ops(page, front_url, ops_api)
    expect(page.locator("#ops-view")).to_be_visible()
    expect(page.locator("#orders-layout")).to_be_hidden()
    expect(page.get_by_role("link", name="Ops")).to_have_attribute("aria-current", "page")

    expect_rates(page)
    cards = page.locator("#ops-figures [data-figure]")
    assert [cards.nth(i).get_attribute("data-figure") for i in range(cards.count())] == FIGURES
    for figure in FIGURES:  # one chart (uPlot's canvas) under each figure, with its legend
        expect(page.locator(f'[data-figure="{figure}"] canvas')).to_have_count(1)
    assert number_in(headline(page, "lag")) == 12
    assert headline(page, "lag-seconds") == "12 s"  # the oldest record not yet committed, over the partitions
    assert headline(page, "dead-letter-queue") == "3 waiting"
    expect(page.locator('[data-figure="dead-letter-queue"] .ops-card__note')).to_have_text(
        "The oldest has waited 1.5 min"
    )
    expect(page.locator('[data-figure="lag"] .ops-card__note')).to_have_text("Retrying: orders-1")
    legend = page.locator('[data-figure="lag"] .u-legend').text_content() or ""
    assert "orders-0" in legend and "orders-1" in legend
    # A label from the metrics is text, never markup.
    assert "<b>invalid</b>" in (page.locator('[data-figure="dead-letters"] .u-legend').text_content() or "")
    expect(page.locator('[data-figure="dead-letters"] b')).to_have_count(0)
    expect(page.locator("#ops-sources li")).to_have_text(["ingest_order: ok", "get_order: ok", "trigger: ok"])
    wait_for_polls(page, 3)  # a few points on each line for the screenshot
    page.screenshot(path=str(artifacts_dir / "ops.png"), full_page=True)

    page.get_by_role("link", name="Lookup").click()
    expect(page.locator("#orders-layout")).to_be_visible()
    expect(page.locator("#ops-view")).to_be_hidden()
    with page.expect_response(lambda response: response.url.endswith("/ops"), timeout=SLOW):
        page.get_by_role("link", name="Ops").click()  # back again: it asks at once and goes on
    expect(page.locator("#ops-view")).to_be_visible()
    wait_for_polls(page, 1)


def test_ops_view_on_a_phone_in_dark_mode(browser: Browser, front_url: str, ops_api: str, artifacts_dir: Path) -> None:
    context = browser.new_context(
        locale="en-US",
        timezone_id="UTC",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        color_scheme="dark",
    )
    try:
        page = open_ops(context.new_page(), front_url, ops_api)
        expect_rates(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # Readable: light text on a dark ground, the headlines and the chart axes alike.
        ground = luminance(page.evaluate("getComputedStyle(document.querySelector('.ops-card')).backgroundColor"))
        text = luminance(page.evaluate("getComputedStyle(document.querySelector('.ops-card__value')).color"))
        axis = luminance(page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--muted')"))
        assert ground < 0.1 and text > 0.6 and axis > 0.3
        wait_for_polls(page, 2)
        page.screenshot(path=str(artifacts_dir / "ops-phone-dark.png"), full_page=True)
    finally:
        context.close()


def test_ops_view_says_when_the_api_has_no_metrics(open_app: Callable[..., Page]) -> None:
    page = open_app()  # the tests' get_order: OPS_METRICS_URLS is empty, as in the cloud
    page.get_by_role("link", name="Ops").click()
    expect(page.locator("#ops-status")).to_contain_text("The ops view is off for this API")
    expect(page.locator("#ops-figures canvas")).to_have_count(0)
