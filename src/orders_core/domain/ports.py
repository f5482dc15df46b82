"""The domain's ports: every value type that crosses its edge and every Protocol an adapter implements.

The use cases (``ingest``, ``lookup``) import only this module and the model; the adapters implement these
Protocols, and the unit tests' fakes are checked against them by mypy (``make lint``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from .model import ValidOrder


# -- what arrives: a record of the topic, as the platform hands it over -----------------------------------


class KafkaRecord(NamedTuple):
    """One record, immutable. A named tuple rather than a frozen dataclass: thousands are made a batch, on each
    side of an invocation, and a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    at over twice the cost."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def partition_name(self) -> str:
        """The partition as the event names it: the key of ``records`` and of ``itemIdentifier``."""
        return f"{self.topic}-{self.partition}"

    @property
    def item_identifier(self) -> dict[str, str | int]:
        """How a failed record is named in ``batchItemFailures``."""
        return {"partition": self.partition_name, "offset": self.offset}

    @property
    def label(self) -> str:
        """A short name for logs: ``orders-0@15``."""
        return f"{self.partition_name}@{self.offset}"


# -- the store -------------------------------------------------------------------------------------------


class StoreUnavailable(Exception):
    """PostgreSQL cannot store anything right now: the caller should retry later; nothing was lost."""


class StoreTimeout(StoreUnavailable):
    """The statement ran out of time (statement_timeout): store fewer orders at once, or retry later."""


class StoreRejected(Exception):
    """PostgreSQL refused the statement for its content (SQLSTATE class 22 or 23): trying again will not help."""

    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class StoreOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the same order was stored before: a harmless redelivery
    CONFLICT = "conflict"  # an order with this uid but other content was stored before


@dataclass(frozen=True, slots=True)
class OrderSummary:
    order_uid: str
    track_number: str
    date_created: str
    amount: int
    currency: str
    item_count: int


# -- the dead letters: a refused record, with every reason ------------------------------------------------


class DeadLetterUnavailable(Exception):
    """The queue could not take these letters: their records must be redelivered, not dropped."""

    def __init__(self, message: str, unsent: Sequence[DeadLetter] = ()) -> None:
        super().__init__(message)
        self.unsent = list(unsent)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str  # not_utf8 | not_json | not_object | invalid | conflict | store_rejected | internal | too_large
    message: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    errors: list[dict[str, str]] = field(default_factory=list)
    order_uid: str | None = None
    headers: tuple[tuple[str, bytes], ...] = ()  # the record's own, as written
    request_id: str | None = None  # the invocation that refused the record: its log line tells the rest


@dataclass(frozen=True, slots=True)
class ReceivedLetter:
    """A letter as a reader of the dead letters receives it, wherever they were sent."""

    letter_id: str  # unique in its destination: SQS's message id, or the letter's own topic-partition@offset
    body: str  # as ``adapters.letters`` encoded it
    sent_at_ms: int  # when the destination took it (epoch milliseconds)
    handle: str  # what deleting or releasing it takes (an SQS receipt handle; a Kafka offset)


# -- the cache tiers ---------------------------------------------------------------------------------------


class Tier(StrEnum):
    LOCAL = "local"
    MEMCACHED = "memcached"
    DATABASE = "database"


# -- what the use cases need of their adapters -----------------------------------------------------------


class OrderStorage(Protocol):
    def store_orders(self, orders: Sequence[ValidOrder], /) -> list[StoreOutcome]:
        """Each order's outcome, in the order given; raises StoreRejected, StoreTimeout or StoreUnavailable."""
        ...

    def refusal_of(self, order: ValidOrder, /) -> StoreRejected | None:
        """How the store refuses this order for its content (None: it takes it); stores nothing."""
        ...


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter], /) -> None:
        """Send every letter or raise DeadLetterUnavailable naming those not sent."""
        ...


class DeadLetterMailbox(Protocol):
    """The dead letters as a reader takes them: a page at a time, each letter held until deleted or released.

    A letter received is not received again by this reader; deleting is for good; releasing hands it back to
    the next reader. ``delete`` and ``release`` return the letters they could not act on (already retried).
    """

    def describe(self) -> str:
        """Which queue or topic, on which endpoint or cluster: what an operator must see before acting."""
        ...

    def size(self) -> int:
        """How many letters wait now (approximate on SQS): a run reads no more than this snapshot."""
        ...

    def receive(self, most: int, /) -> list[ReceivedLetter]:
        """Up to ``most`` letters not yet received by this reader; empty when none is there now."""
        ...

    def delete(self, letters: Sequence[ReceivedLetter], /) -> list[ReceivedLetter]: ...
    def release(self, letters: Sequence[ReceivedLetter], /) -> list[ReceivedLetter]: ...
    def close(self) -> None: ...


class OrderCacheWriter(Protocol):
    def put_many(self, orders_json: Mapping[str, bytes], /) -> None:
        """Write freshly stored orders through; may raise (the ingest ignores cache failures)."""
        ...


class OrderReader(Protocol):
    """The store as the lookup reads it (``adapters.postgres.OrderStore``)."""

    def get_order_json(self, order_uid: str) -> bytes | None: ...
    def recent_orders(self, limit: int) -> list[OrderSummary]: ...
    def ping(self) -> None: ...


class OrderLookupCache(Protocol):
    """The two cache tiers as the lookup uses them (``adapters.cache.OrderCache``)."""

    def get(self, order_uid: str) -> tuple[bytes | None, Tier | None]: ...
    def get_many(self, order_uids: list[str]) -> dict[str, tuple[bytes | None, Tier]]: ...
    def get_local(self, order_uid: str) -> bytes | None: ...
    def put(self, order_uid: str, order_json: bytes) -> None: ...
    def put_missing(self, order_uid: str) -> None: ...
    def health(self) -> str: ...
