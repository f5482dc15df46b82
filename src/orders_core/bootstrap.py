"""The composition root: the one place concrete adapters are named and wired, each handed only the settings
it needs (``narrow``). Clients are made once per warm instance and reused by every invocation, created on
first use so that importing a function touches no network. Tests call ``reset()`` after changing the
environment."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from orders_core.adapters import postgres
from orders_core.adapters.cache import CacheSettings, OrderCache
from orders_core.adapters.postgres import OrderStore, PostgresSettings
from orders_core.config import Settings, get_settings, narrow
from orders_core.domain.ingest import IngestService
from orders_core.domain.ports import DeadLetterMailbox
from orders_core.http import metrics
from orders_core.http.api import LookupService, LookupSettings

# The dead letters' and the topic's adapters are imported where they are made: get_order never uses them, and
# with boto3 and confluent-kafka behind them they were two thirds of its cold start's imports.
if TYPE_CHECKING:
    from orders_core.adapters.kafka_dlq import KafkaDeadLetterSink
    from orders_core.adapters.sqs import DeadLetterQueue


@cache
def order_store() -> OrderStore:
    return OrderStore(narrow(get_settings(), PostgresSettings), metrics.postgres_connections("primary"))


@cache
def replica_store() -> OrderStore | None:
    """The read replica's store, when PG_REPLICA_HOST names one."""
    settings = get_settings()
    if not settings.pg_replica_host:
        return None
    port = settings.pg_replica_port or settings.pg_port
    replica = settings.model_copy(update={"pg_host": settings.pg_replica_host, "pg_port": port})
    return OrderStore(narrow(replica, PostgresSettings), metrics.postgres_connections("replica"))


@cache
def order_cache() -> OrderCache:
    return OrderCache(narrow(get_settings(), CacheSettings), metrics.memcached_error)


@cache
def dead_letter_queue() -> DeadLetterQueue | KafkaDeadLetterSink:
    """Where refused records go (DEAD_LETTER_SINK): the SQS queue, or the Kafka topic DLQ_TOPIC."""
    settings = get_settings()
    if settings.dead_letter_sink == "kafka":
        from orders_core.adapters.kafka_dlq import KafkaDeadLetterSettings, KafkaDeadLetterSink

        return KafkaDeadLetterSink(narrow(settings, KafkaDeadLetterSettings))
    from orders_core.adapters.sqs import DeadLetterQueue, SqsSettings

    return DeadLetterQueue(narrow(settings, SqsSettings))


def dead_letter_mailbox(settings: Settings, hold_s: int = 120, wait_s: int = 1) -> DeadLetterMailbox:
    """The dead letters as a reader takes them (orders-dlq, the dev stack's drain), from where the ingest sends
    them; SQS holds a letter received for ``hold_s`` and waits up to ``wait_s`` for one (a topic needs neither:
    its reader reads to the end it saw at the start)."""
    if settings.dead_letter_sink == "kafka":
        from orders_core.adapters.kafka_dlq import KafkaDeadLetterSettings, KafkaMailbox

        return KafkaMailbox(narrow(settings, KafkaDeadLetterSettings))
    from orders_core.adapters.sqs import SqsMailbox, SqsSettings

    return SqsMailbox(narrow(settings, SqsSettings), hold_s=hold_s, wait_s=wait_s)


@cache
def dead_letter_figures() -> metrics.DeadLetterQueueCollector:
    """The dead-letter queue's depth and oldest age for ingest_order's /metrics, read at most every few seconds."""
    return metrics.DeadLetterQueueCollector(dead_letter_queue().depth, metrics.DEAD_LETTER_READ_EVERY_S)


@cache
def ingest_service() -> IngestService:
    return IngestService(order_store(), dead_letter_queue(), order_cache())


@cache
def lookup_service() -> LookupService:
    settings = narrow(get_settings(), LookupSettings)
    replica = replica_store()
    if replica is None:
        return LookupService(settings, order_store(), order_cache())
    return LookupService(settings, replica, order_cache(), primary=order_store())


def provision() -> list[str]:
    """The stack's provisioning: the migrations, then the topic (both idempotent); what each step did."""
    from orders_core.adapters import kafka_admin

    settings = get_settings()
    migrated = postgres.migrate(narrow(settings, PostgresSettings))
    return [migrated, kafka_admin.ensure_topic(narrow(settings, kafka_admin.KafkaTopicSettings))]


def reset() -> None:
    """Forget settings and clients (tests change the environment between cases)."""
    for made in (
        order_store,
        replica_store,
        order_cache,
        dead_letter_queue,
        dead_letter_figures,
        ingest_service,
        lookup_service,
    ):
        made.cache_clear()
    get_settings.cache_clear()
