"""All configuration, read from the environment in one place.

Every field maps to an upper-case environment variable of the same name (``pg_host`` is ``PGHOST``
where libpq has a standard name). Defaults are the local stack's fixed ports; the README lists them.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings shared by every function, the trigger and the generator."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    # PostgreSQL (libpq's variable names, so psql and the service agree).
    pg_host: str = Field("127.0.0.1", validation_alias="PGHOST")
    pg_port: int = Field(5432, validation_alias="PGPORT")
    pg_user: str = Field("orders", validation_alias="PGUSER")
    pg_password: str = Field("orders", validation_alias="PGPASSWORD")
    pg_database: str = Field("orders", validation_alias="PGDATABASE")
    pg_timeout_s: float = 5.0
    # Server-side limits of each statement: a batch slower than this is split; waiting this long for a lock
    # means the store is busy, and the batch is retried whole.
    pg_statement_timeout_s: float = Field(3.0, gt=0)
    pg_lock_timeout_s: float = Field(1.0, gt=0)

    # memcached; empty disables the shared tier (the in-process tier still works).
    memcached_servers: str = "127.0.0.1:11211"
    memcached_timeout_s: float = 0.25
    memcached_pool_size: int = 16
    cache_ttl_s: int = 3600
    cache_negative_ttl_s: int = 5
    cache_lru_size: int = 2048
    cache_lru_ttl_s: float = 60.0

    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic: str = "orders"
    kafka_topic_partitions: int = 3
    kafka_group_id: str = "orders-ingest-trigger"

    # AWS (dead-letter queue). AWS_ENDPOINT_URL set: LocalStack or a moto server; unset: real AWS.
    aws_endpoint_url: str | None = "http://127.0.0.1:4566"
    aws_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    dlq_queue_name: str = "orders-dlq"
    dlq_queue_url: str | None = None

    # The Kafka trigger (local stand-in for the event source mapping); defaults as the cloud's.
    ingest_url: str = "http://127.0.0.1:8081"
    trigger_batch_size: int = Field(100, ge=1, le=10_000)
    trigger_batch_window_s: float = Field(0.5, ge=0, le=300)
    trigger_retry_initial_s: float = 0.2
    trigger_retry_max_s: float = 30.0
    trigger_request_timeout_s: float = 60.0

    # HTTP
    cors_allow_origins: str = "http://localhost:3000,http://127.0.0.1:3000"
    recent_orders_max: int = 100

    # Generator
    generate_max_count: int = 1_000_000

    @classmethod
    def environment_names(cls) -> set[str]:
        """Every environment variable the settings read: a field's aliases, else its name in capitals."""
        names: set[str] = set()
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names |= {choice for choice in alias.choices if isinstance(choice, str)}
            elif isinstance(alias, str):
                names.add(alias)
            else:
                names.add(name.upper())
        return names

    @property
    def cors_origins(self) -> frozenset[str]:
        return frozenset(o.strip() for o in self.cors_allow_origins.split(",") if o.strip())

    @property
    def memcached_server_list(self) -> list[str]:
        return [s.strip() for s in self.memcached_servers.split(",") if s.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests change the environment and call ``get_settings.cache_clear()``."""
    return Settings()
