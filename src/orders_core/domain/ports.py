"""What the ingest needs of its adapters: the real ones (storage, dead_letters, cache) and the unit tests'
fakes both satisfy these protocols, so each is checked against the same contract."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from orders_core.adapters.postgres import StoreOutcome, StoreRejected
    from orders_core.adapters.sqs import DeadLetter
    from orders_core.domain.model import Order


class OrderStorage(Protocol):
    def store_orders(self, orders: Sequence[Order], /) -> list[StoreOutcome]:
        """Each order's outcome, in the order given; raises StoreRejected, StoreTimeout or StoreUnavailable."""
        ...

    def refusal_of(self, order: Order, /) -> StoreRejected | None:
        """How the store refuses this order for its content (None: it takes it); stores nothing."""
        ...


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter], /) -> None:
        """Send every letter or raise DeadLetterUnavailable naming those not sent."""
        ...


class OrderCacheWriter(Protocol):
    def put_many(self, orders_json: Mapping[str, bytes], /) -> None:
        """Write freshly stored orders through; may raise (the ingest ignores cache failures)."""
        ...
