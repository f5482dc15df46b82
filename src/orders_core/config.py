"""All configuration, read from the environment in one place.

Every field maps to an upper-case environment variable of the same name (``pg_host`` is ``PGHOST``
where libpq has a standard name). Defaults are the local stack's fixed ports; the README lists them.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Shape = TypeVar("Shape")


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
    # Secrets Manager secret (ARN or name) whose JSON "password" replaces PGPASSWORD: read at run time, so
    # a rotation reaches running functions (the cloud's way; locally it is unset).
    pg_password_secret_id: str | None = None
    # Reading it: one request given up after this long to connect (and as long again to answer), no retries;
    # and at most one read per interval, however many connections PostgreSQL refuses meanwhile.
    pg_password_secret_timeout_s: float = Field(2.0, gt=0, le=30)
    pg_password_secret_min_interval_s: float = Field(5.0, ge=0)
    # Server-side limits of each statement: a batch slower than this is split; waiting this long for a lock
    # means the store is busy, and the batch is retried whole.
    pg_statement_timeout_s: float = Field(3.0, gt=0)
    pg_lock_timeout_s: float = Field(1.0, gt=0)
    # A streaming read replica for get_order's reads (unset: the primary reads too). An order not on the
    # replica yet is asked of the primary before a lookup answers 404. Same user, password and database.
    pg_replica_host: str | None = None
    pg_replica_port: int | None = None

    # memcached; empty disables the shared tier (the in-process tier still works).
    memcached_servers: str = "127.0.0.1:11211"
    memcached_timeout_s: float = 0.25
    cache_ttl_s: int = 3600
    cache_negative_ttl_s: int = 5
    cache_lru_size: int = 2048
    cache_lru_ttl_s: float = 60.0
    cache_lru_max_bytes: int = 64 * 1024 * 1024

    # Kafka. Every client (producer, trigger, orders-setup, orders-dlq) connects with these, through
    # adapters/kafka_client.py; the names are librdkafka's properties (security.protocol -> KAFKA_SECURITY_PROTOCOL)
    # so that its documentation answers for them. docs/kafka.md has a worked example per kind of cluster.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic: str = "orders"
    kafka_group_id: str = "orders-ingest-trigger"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    # OAUTHBEARER is Amazon MSK's IAM authentication: tokens signed with the process's AWS role, no secret.
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # Secrets Manager secret (ARN or name) holding JSON {"username", "password"} (MSK SCRAM's shape): read when a
    # client is made, so a client rebuilt after a refused login picks up a rotated password.
    kafka_sasl_secret_arn: str | None = None
    # TLS: the CA bundle that signed the brokers' certificates (unset: the system's), and a client certificate
    # and key (PEM) for mutual TLS.
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # Or the client certificate and key from Secrets Manager, in the event source mapping's own format for mutual
    # TLS (JSON {"certificate", "privateKey", "privateKeyPassword"?}, PEM): one secret for the mapping and the code.
    kafka_ssl_secret_arn: str | None = None
    # The topic orders-setup creates (and checks, when it exists): 1 replica suits one local broker only.
    kafka_topic_partitions: int = Field(3, ge=1)
    kafka_topic_replication_factor: int = Field(1, ge=1)

    # AWS (dead-letter queue). AWS_ENDPOINT_URL set: a local SQS (ElasticMQ, or moto in tests); unset or empty:
    # real AWS. No local default: an operator's `orders-dlq` with nothing set acts on the cloud, as it says;
    # `make up`, compose and the tests set it.
    aws_endpoint_url: str | None = None
    aws_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    dlq_queue_name: str = "orders-dlq"
    dlq_queue_url: str | None = None
    # Where the ingest sends dead letters: the SQS queue above, or a Kafka topic of the ingest's cluster (the same
    # letters either way, adapters/letters.py). `orders-dlq` and the dev stack read whichever is set.
    dead_letter_sink: Literal["sqs", "kafka"] = "sqs"
    dlq_topic: str = "orders.dlq"
    # orders-dlq's record of what it redrove (compacted, keyed by the letter's record): a redrive is done once,
    # and a record's redrive count is known without a header on the record.
    dlq_ledger_topic: str = "orders.dlq.redrives"

    # The Kafka trigger (local stand-in for the event source mapping); defaults as the cloud's.
    ingest_url: str = "http://127.0.0.1:8081"
    # 1,000 records per invocation, not the platform's default of 100: each invocation has a fixed cost (an HTTP
    # request or a Lambda invocation, one statement, one log line), and at 100 that cost is most of a small
    # order's (docs/benchmarks.md). 1,000 of the generator's orders make an event of about 2 MB, in the 6 MB limit.
    trigger_batch_size: int = Field(2_000, ge=1, le=10_000)
    # No wait: a partition's records go as soon as its previous invocation has answered, and those that came
    # meanwhile make the batch, so a backlog still goes in whole batches and a trickle at once (the lowest
    # latency). A window (the platform's MaximumBatchingWindowInSeconds, whole seconds) trades latency for
    # fewer invocations at a low rate (docs/benchmarks.md).
    trigger_batch_window_s: float = Field(0.0, ge=0, le=300)
    trigger_retry_initial_s: float = 0.2
    trigger_retry_max_s: float = 30.0
    trigger_request_timeout_s: float = 60.0
    # The trigger's static member id in its consumer group (unique per running trigger; empty: a dynamic member).
    # Set, a trigger restarted after a SIGKILL resumes at once; but SIGTERM then does not leave the group.
    trigger_instance_id: str | None = None
    # One invocation's event: AWS Lambda's payload limit of a synchronous invocation (6 MB).
    trigger_max_event_bytes: int = Field(6 * 1024 * 1024, ge=4096)
    # The trigger's own HTTP server: GET /status (JSON) and GET /metrics (Prometheus); port 0 turns it off.
    # The host is the loopback locally; a container binds every address so that others can scrape it.
    trigger_status_host: str = "127.0.0.1"
    trigger_status_port: int = Field(8083, ge=0, le=65535)
    # How often librdkafka reports its statistics, whence each partition's consumer lag.
    trigger_statistics_interval_s: float = Field(5.0, ge=0.1, le=3600)

    # HTTP
    cors_allow_origins: str = "http://localhost:3000,http://127.0.0.1:3000"
    recent_orders_max: int = 100
    # GET /orders lists order ids, and an id opens a customer's details: on for the local stack, off by default
    # in the deployed one (template.yaml's OrderListingEnabled).
    recent_orders_enabled: bool = True
    # Request bodies: refused with 413 beyond these, before they are read. The ingest's is the platform's payload
    # cap of a synchronous invocation (6 MB), the largest event the trigger sends; the others take small JSON.
    ingest_max_body_bytes: int = Field(6 * 1024 * 1024, ge=4096)
    generate_max_body_bytes: int = Field(16 * 1024, ge=256)
    lookup_max_body_bytes: int = Field(16 * 1024, ge=0)
    # get_order's ASGI adapter: reads waiting for a PostgreSQL thread beyond this answer 503 at once, so a flood
    # queues neither memory nor latency without bound.
    lookup_queue_max: int = Field(256, ge=1)
    # Where get_order's plain ASGI app (`make up`, compose) writes its line per lookup, in blocks twenty times a second:
    # `-` stderr, a path a file, empty nowhere. Only at LOG_LEVEL INFO or DEBUG.
    invocation_log: str = "-"
    # get_order's GET /ops (the page's ops view): "name=url,name=url", each a process's Prometheus /metrics,
    # scraped server-side within OPS_SCRAPE_TIMEOUT_S. Empty (the deployed default: CloudWatch holds the
    # figures there) answers 404.
    ops_metrics_urls: str = ""
    ops_scrape_timeout_s: float = Field(1.0, gt=0, le=10)

    # Generator. One call of generate_orders produces at most this many orders (about 150 MB on the producer's
    # queue at most, well within the function's memory and time); orders-generate takes any count.
    generate_max_count: int = Field(100_000, ge=1)
    # Mixed into the seed a scheduled run derives from its schedule and occurrence time, so that its order uids
    # cannot be computed from those alone (the cloud keeps it secret; empty: unkeyed).
    generate_seed_key: str = Field("", max_length=64)
    # How long the producer tries to deliver an order before reporting it failed (librdkafka's message timeout).
    generate_message_timeout_s: float = Field(30.0, gt=0)

    # Processes: the log level of every process; the threads of each functions-framework worker (gunicorn
    # reads THREADS itself), which also size get_order's pool for PostgreSQL reads in its ASGI adapter.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # One JSON object a line (Powertools Logger's formatter), for log search; `make up` sets text, for people.
    log_format: Literal["json", "text"] = "json"
    # Where each worker of a functions-framework process keeps its metrics (prometheus_client's multiprocess
    # mode, which reads this variable itself): /metrics adds up every worker's files. Unset: in-process only.
    prometheus_multiproc_dir: str | None = None
    # CloudWatch namespace of the EMF metrics the Lambda handlers print (the variable Powertools Metrics reads).
    powertools_metrics_namespace: str = "orders"
    threads: int = Field(8, ge=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("dead_letter_sink", mode="before")
    @classmethod
    def _lower_case_sink(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("aws_endpoint_url", mode="before")
    @classmethod
    def _empty_endpoint_is_aws(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case_kafka_names(cls, value: object) -> object:
        """librdkafka's documentation writes ``sasl_ssl``, Kafka's ``SASL_SSL``: both are taken."""
        return (value.upper() or None) if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_case_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    # orders-scheduler (local stand-in for EventBridge Scheduler): calls generate_orders at GENERATE_URL
    # with {"count": GENERATE_SCHEDULE_COUNT} on the schedule expression; empty disables it.
    generate_url: str = "http://127.0.0.1:8082"
    generate_schedule: str = "rate(1 minute)"
    generate_schedule_count: int = Field(10, ge=1)
    generate_schedule_retry_initial_s: float = Field(0.5, gt=0)
    generate_schedule_retry_max_s: float = Field(30.0, gt=0)
    generate_schedule_timeout_s: float = Field(300.0, gt=0)
    # orders-scheduler's GET /health (its schedule, last occurrence and next one due); port 0 turns it off.
    scheduler_status_host: str = "127.0.0.1"
    scheduler_status_port: int = Field(8084, ge=0, le=65535)

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> Settings:
        """Refuse at start a Kafka configuration librdkafka would only fail on at the first connection."""
        protocol, mechanism = self.kafka_security_protocol, self.kafka_sasl_mechanism
        sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
        if sasl and mechanism is None:
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256, "
                "SCRAM-SHA-512 or OAUTHBEARER)"
            )
        if not sasl and mechanism is not None:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)"
            )
        credentials = self.kafka_sasl_username or self.kafka_sasl_password or self.kafka_sasl_secret_arn
        if mechanism == "OAUTHBEARER" and credentials:
            raise ValueError(
                "KAFKA_SASL_MECHANISM=OAUTHBEARER (MSK IAM) signs with the AWS role: unset "
                "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_SECRET_ARN"
            )
        if mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            if self.kafka_sasl_secret_arn and (self.kafka_sasl_username or self.kafka_sasl_password):
                raise ValueError(
                    "KAFKA_SASL_SECRET_ARN holds the username and password: unset KAFKA_SASL_USERNAME "
                    "and KAFKA_SASL_PASSWORD"
                )
            if not self.kafka_sasl_secret_arn and not (self.kafka_sasl_username and self.kafka_sasl_password):
                raise ValueError(
                    f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, "
                    "or KAFKA_SASL_SECRET_ARN"
                )
        if not mechanism and credentials:
            raise ValueError(
                "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD or KAFKA_SASL_SECRET_ARN set without SASL: set "
                "KAFKA_SECURITY_PROTOCOL=SASL_SSL and KAFKA_SASL_MECHANISM"
            )
        tls_files = {
            "KAFKA_SSL_CA_LOCATION": self.kafka_ssl_ca_location,
            "KAFKA_SSL_CERTIFICATE_LOCATION": self.kafka_ssl_certificate_location,
            "KAFKA_SSL_KEY_LOCATION": self.kafka_ssl_key_location,
            "KAFKA_SSL_KEY_PASSWORD": self.kafka_ssl_key_password,
            "KAFKA_SSL_SECRET_ARN": self.kafka_ssl_secret_arn,
        }
        if not tls and (given := [name for name, value in tls_files.items() if value]):
            raise ValueError(
                f"{', '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS (SSL or SASL_SSL)"
            )
        if self.kafka_ssl_secret_arn and (self.kafka_ssl_certificate_location or self.kafka_ssl_key_location):
            raise ValueError(
                "KAFKA_SSL_SECRET_ARN holds the client certificate and key: unset KAFKA_SSL_CERTIFICATE_LOCATION and "
                "KAFKA_SSL_KEY_LOCATION"
            )
        if bool(self.kafka_ssl_certificate_location) != bool(self.kafka_ssl_key_location):
            raise ValueError("mutual TLS needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION")
        return self

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

    @field_validator("ops_metrics_urls")
    @classmethod
    def _named_http_urls(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            name, _, url = entry.partition("=")
            if not name.strip() or not url.strip().startswith(("http://", "https://")):
                raise ValueError(f"expected name=http://host:port/metrics, got {entry!r}")
        return value

    @property
    def ops_metrics_sources(self) -> dict[str, str]:
        """OPS_METRICS_URLS as name -> URL, in the order given."""
        entries = (e.strip().partition("=") for e in self.ops_metrics_urls.split(",") if e.strip())
        return {name.strip(): url.strip() for name, _, url in entries}

    @property
    def memcached_server_list(self) -> list[str]:
        return [s.strip() for s in self.memcached_servers.split(",") if s.strip()]


def narrow(settings: Settings, shape: type[Shape]) -> Shape:
    """The few settings an adapter needs (``shape``, a dataclass of Settings' field and property names), taken
    from ``settings``: the composition root hands each adapter these, never the whole Settings."""
    return shape(**{field.name: getattr(settings, field.name) for field in dataclasses.fields(shape)})  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests change the environment and call ``get_settings.cache_clear()``."""
    return Settings()
