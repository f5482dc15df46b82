"""get_order's ASGI adapter bounds the reads waiting for PostgreSQL: beyond the bound, 503 at once."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from functions.get_order.main import StorePool
from orders_core.http.api import Route
from orders_core.http.responses import HttpResponse


class SlowService:
    """Answers from the "store" only when released; a busy answer says so."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def answer_from_store(self, route: Route) -> HttpResponse:
        self.release.wait(10)
        return HttpResponse(200, b"order")

    def busy(self, route: Route) -> HttpResponse:
        return HttpResponse(503, headers={"Retry-After": "1"})


def test_reads_beyond_threads_and_queue_are_refused_at_once_and_the_rest_are_answered() -> None:
    async def scenario() -> list[int]:
        service = SlowService()
        pool = StorePool(threads=1, queue_max=2)  # one reading, two waiting
        route = Route("order", order_uid="uid")
        waiting = [asyncio.create_task(pool.answer(service, route)) for _ in range(3)]
        await asyncio.sleep(0.05)
        refused = await pool.answer(service, route)
        service.release.set()
        answered = await asyncio.gather(*waiting)
        return [refused.status, *(answer.status for answer in answered)]

    # A loop of its own, in a thread: another test's tool (a browser driver) may hold this thread's loop.
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, scenario()).result() == [503, 200, 200, 200]
