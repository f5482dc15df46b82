"""get_order's ASGI adapter, driven in-process: what must never run on the event loop, and bodies it refuses."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import functions_framework.aio
import pytest

from orders_core import bootstrap as runtime
from orders_core.http import metrics
from orders_core.http.responses import HttpResponse

SOURCE = "functions/get_order/main.py"


@pytest.fixture(scope="module")
def app() -> Iterator[Any]:
    runtime.reset()
    yield functions_framework.aio.create_asgi_app(target="asgi", source=SOURCE)
    runtime.reset()


async def call(
    app: Any, method: str, path: str, headers: tuple[tuple[bytes, bytes], ...] = (), body: tuple[bytes, ...] = ()
) -> tuple[int, bytes]:
    """One request through the ASGI app: the status and the body of its answer."""
    chunks = [*body] or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": list(headers),
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def on_own_loop(scenario: Any) -> Any:
    # A loop of its own, in a thread: another test's tool (a browser driver) may hold this thread's loop.
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, scenario).result()


def test_a_slow_metrics_scrape_does_not_stall_the_event_loop(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN collecting the metrics takes until released (many workers' files on a slow disk)
    release, collecting = threading.Event(), threading.Event()
    finished: list[str] = []
    real = metrics.endpoint

    def slow_endpoint(method: str, *collectors: Any, **options: Any) -> HttpResponse:
        collecting.set()
        release.wait(10)  # a safety net only: the test releases it as soon as the lookup is answered
        finished.append("scrape")
        return real(method, *collectors, **options)

    monkeypatch.setattr(metrics, "endpoint", slow_endpoint)

    async def scenario() -> tuple[int, int]:
        scrape = asyncio.create_task(call(app, "GET", "/metrics"))
        while not collecting.is_set():
            await asyncio.sleep(0.001)
        # WHEN a request arrives while the scrape is collecting
        status, _ = await call(app, "GET", "/livez")
        finished.append("lookup")
        release.set()
        scraped, _ = await scrape
        return status, scraped

    try:
        assert on_own_loop(scenario()) == (200, 200)
    finally:
        release.set()
    # THEN the lookup was answered while the scrape was still collecting
    assert finished == ["lookup", "scrape"]


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (((b"content-length", b"1048576"),), (b"x" * 1024,)),  # refused on the declared length alone
        (((b"transfer-encoding", b"chunked"),), (b"x" * 8192,) * 64),  # counted while it arrives
    ],
)
def test_a_body_over_the_limit_is_refused_with_413(app: Any, headers: Any, body: tuple[bytes, ...]) -> None:
    status, answer = on_own_loop(call(app, "GET", "/livez", headers, body))
    assert status == 413
    assert b"payload_too_large" in answer


def test_a_small_body_is_ignored_and_the_lookup_answered(app: Any) -> None:
    status, _ = on_own_loop(call(app, "GET", "/livez", ((b"content-length", b"2"),), (b"{}",)))
    assert status == 200
