"""get_order's ASGI adapter bounds the reads waiting for PostgreSQL: beyond the bound, 503 at once."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from orders_core.http.api import Route
from orders_core.http.asgi import StorePool
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
        await asyncio.sleep(0)  # each task runs to its first await: its place taken
        refused = await pool.answer(service, route)
        service.release.set()
        answered = await asyncio.gather(*waiting)
        return [refused.status, *(answer.status for answer in answered)]

    # A loop of its own, in a thread: another test's tool (a browser driver) may hold this thread's loop.
    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, scenario()).result() == [503, 200, 200, 200]


class BusyStore(SlowService):
    """Lookups wait for the release; a health check answers at once."""

    def answer_from_store(self, route: Route) -> HttpResponse:
        if route.resource == "health":
            return HttpResponse(200, b"healthy")
        return super().answer_from_store(route)


def test_health_is_answered_while_every_read_thread_and_queue_slot_is_taken() -> None:
    async def scenario() -> tuple[int, int, bool]:
        service = BusyStore()
        pool = StorePool(threads=1, queue_max=1)
        lookups = [asyncio.create_task(pool.answer(service, Route("order", order_uid="uid"))) for _ in range(2)]
        await asyncio.sleep(0)  # both lookups take their places
        refused = await pool.answer(service, Route("order", order_uid="uid"))
        health = await pool.answer(service, Route("health"))
        waiting = not any(lookup.done() for lookup in lookups)
        service.release.set()
        await asyncio.gather(*lookups)
        return refused.status, health.status, waiting

    with ThreadPoolExecutor(1) as thread:
        assert thread.submit(asyncio.run, scenario()).result() == (503, 200, True)
