"""The fakes the unit tests put at the domain's seams, each checked by mypy (strict) against the Protocol of
``orders_core.domain.ports`` it stands in for: a fake that drifts from its port fails ``make lint``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orders_core.domain.model import ValidOrder
from orders_core.domain.ports import (
    DeadLetter,
    DeadLetterSink,
    DeadLetterUnavailable,
    OrderCacheWriter,
    OrderLookupCache,
    OrderReader,
    OrderStorage,
    OrderSummary,
    StoreOutcome,
    StoreRejected,
    StoreTimeout,
    StoreUnavailable,
    Tier,
)


class FakeOrderStorage:
    def __init__(self) -> None:
        self.orders: dict[str, bytes] = {}
        self.down = False
        self.refused_customer: str | None = None
        self.refuse_all_with: str | None = None  # an SQLSTATE every statement fails with
        self.slow_customers: set[str] = set()  # a statement holding one of these times out
        self.statements: list[int] = []  # the size of each statement tried

    def store_orders(self, orders: Sequence[ValidOrder], /) -> list[StoreOutcome]:
        self.statements.append(len(orders))
        if self.down:
            raise StoreUnavailable("down")
        if self.refuse_all_with:
            raise StoreRejected("refused alike", self.refuse_all_with)
        if any(order.content.customer_id == self.refused_customer for order in orders):
            raise StoreRejected("refused", "23514")
        if any(order.content.customer_id in self.slow_customers for order in orders):
            raise StoreTimeout("canceling statement due to statement timeout (57014)")
        outcomes = []
        for order in orders:
            document = order.canonical_json
            known = self.orders.get(order.order_uid)
            if known is None:
                self.orders[order.order_uid] = document
                outcomes.append(StoreOutcome.STORED)
            else:
                outcomes.append(StoreOutcome.DUPLICATE if known == document else StoreOutcome.CONFLICT)
        return outcomes

    def refusal_of(self, order: ValidOrder, /) -> StoreRejected | None:
        if self.down:
            raise StoreUnavailable("down")
        if self.refuse_all_with:
            return StoreRejected("refused alike", self.refuse_all_with)
        return StoreRejected("refused", "23514") if order.content.customer_id == self.refused_customer else None


class FakeDeadLetterSink:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.down = False
        self.takes: int | None = None  # how many letters it takes before it fails

    def send(self, letters: Sequence[DeadLetter], /) -> None:
        if self.down and letters:
            raise DeadLetterUnavailable("down", letters)
        taken = len(letters) if self.takes is None else self.takes
        self.letters.extend(letters[:taken])
        if taken < len(letters):
            raise DeadLetterUnavailable("throttled", letters[taken:])


class FakeCacheWriter:
    def __init__(self, fail: bool = False) -> None:
        self.written: dict[str, bytes] = {}
        self.fail = fail

    def put_many(self, orders: Mapping[str, bytes], /) -> None:
        if self.fail:
            raise ConnectionError("memcached down")
        self.written.update(orders)


class FakeOrderReader:
    def __init__(self) -> None:
        self.orders: dict[str, bytes] = {}
        self.reads: list[str] = []
        self.down = False

    def get_order_json(self, order_uid: str) -> bytes | None:
        self.reads.append(order_uid)
        if self.down:
            raise StoreUnavailable("down")
        return self.orders.get(order_uid)

    def recent_orders(self, limit: int) -> list[OrderSummary]:
        return []

    def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("down")


class FakeLookupCache:
    def __init__(self) -> None:
        self.orders: dict[str, bytes] = {}
        self.missing: set[str] = set()
        self.asked: list[str] = []
        self.broken = False

    def get(self, order_uid: str) -> tuple[bytes | None, Tier | None]:
        self.asked.append(order_uid)
        if self.broken:
            raise RuntimeError("cache bug")
        if order_uid in self.orders:
            return self.orders[order_uid], Tier.MEMCACHED
        return None, Tier.MEMCACHED if order_uid in self.missing else None

    def get_many(self, order_uids: list[str]) -> dict[str, tuple[bytes | None, Tier]]:
        found: dict[str, tuple[bytes | None, Tier]] = {}
        for order_uid in order_uids:  # this fake has one tier, the shared one
            body, tier = self.get(order_uid)
            if tier is not None:
                found[order_uid] = (body, tier)
        return found

    def get_local(self, order_uid: str) -> bytes | None:
        return None

    def put(self, order_uid: str, order_json: bytes) -> None:
        self.orders[order_uid] = order_json

    def put_missing(self, order_uid: str) -> None:
        self.missing.add(order_uid)

    def health(self) -> str:
        return "ok"


def _conform(
    storage: FakeOrderStorage,
    sink: FakeDeadLetterSink,
    writer: FakeCacheWriter,
    reader: FakeOrderReader,
    lookup_cache: FakeLookupCache,
) -> tuple[OrderStorage, DeadLetterSink, OrderCacheWriter, OrderReader, OrderLookupCache]:
    return storage, sink, writer, reader, lookup_cache  # mypy: each fake is its port
