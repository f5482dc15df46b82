"""Browser-test fixtures: the static page server (infra/native/front.sh), headless Chromium, a page per test.

Nothing here skips: without Chromium at ``CHROMIUM_PATH`` (default /usr/bin/chromium) the tests fail.
``get_order_url`` and ``seed_orders`` come from tests/conftest.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"front.sh exited with {proc.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"front.sh did not serve {url} within {timeout_s}s")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def front_url() -> Iterator[str]:
    """Base URL of front/ served by infra/native/front.sh on a free port (or FRONT_TEST_PORT)."""
    port = int(os.environ.get("FRONT_TEST_PORT") or free_port())
    env = {**os.environ, "PYTHON": sys.executable, "FRONT_HOST": "127.0.0.1"}
    proc = subprocess.Popen(
        [str(REPO / "infra" / "native" / "front.sh"), str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/index.html", proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def api_cors_checked(get_order_url: str, front_url: str) -> str:
    """The API base URL, after checking it lets the page's origin read its answers (else: a clear failure)."""
    request = urllib.request.Request(
        f"{get_order_url}/orders?limit=1", headers={"Origin": front_url}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        allowed = response.headers.get("Access-Control-Allow-Origin")
    if allowed not in ("*", front_url):
        pytest.fail(
            f"get_order at {get_order_url} does not allow the page origin {front_url} "
            f"(Access-Control-Allow-Origin: {allowed!r}); the browser would block every answer"
        )
    return get_order_url


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
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
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
