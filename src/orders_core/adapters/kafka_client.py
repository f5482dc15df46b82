"""How every Kafka client of the project connects: one set of librdkafka properties made from the settings.

The producer, the trigger's consumer, ``orders-setup``'s admin client and ``orders-dlq`` all start from
:func:`client_config` and add only what their role needs (group id, acks, timeouts), so a cluster that needs TLS,
SASL/SCRAM or MSK IAM is configured once, with librdkafka's own property names (docs/kafka.md).

librdkafka treats a refused login or an untrusted certificate like a broker that is down: it logs, and retries
forever, so a client waits for its own timeouts (30 s and more) before saying anything. The error callback set
here raises :class:`KafkaAuthError` instead, out of the ``poll()``, ``consume()`` or ``flush()`` that served it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from confluent_kafka import KafkaError
from pydantic import SecretStr


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """What a Kafka client needs to reach the cluster: its address, how it logs in and whom it trusts (librdkafka's
    names), and the AWS region and endpoint of the secrets and of MSK IAM. Two clients equal in these can be one."""

    kafka_bootstrap_servers: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str | None
    kafka_sasl_username: str | None
    kafka_sasl_password: SecretStr | None
    kafka_sasl_secret_arn: str | None
    kafka_ssl_ca_location: str | None
    kafka_ssl_certificate_location: str | None
    kafka_ssl_key_location: str | None
    kafka_ssl_key_password: SecretStr | None
    kafka_ssl_secret_arn: str | None
    aws_region: str
    aws_endpoint_url: str | None


FLUSH_SLICE_S = 0.2

# What to check for each error that retrying cannot fix.
_REFUSALS = {
    KafkaError._AUTHENTICATION: "the cluster refused the login: check KAFKA_SASL_MECHANISM and the credentials "
    "(KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or the secret KAFKA_SASL_SECRET_ARN, or the AWS role for MSK IAM)",
    KafkaError._SSL: "the TLS handshake failed: check KAFKA_SSL_CA_LOCATION (the CA that signed the brokers' "
    "certificates) and, for mutual TLS, KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION (or the secret "
    "KAFKA_SSL_SECRET_ARN)",
}


class KafkaAuthError(Exception):
    """The cluster refused our credentials, or we refused its certificate: retrying will not help, the settings
    must change."""


class KafkaSecretUnavailable(RuntimeError):
    """The credentials could not be read from Secrets Manager (retry later, or fix the secret)."""


def connection_key(settings: KafkaSettings) -> tuple[Any, ...]:
    """What identifies a client's connection (to cache one client per cluster and login)."""
    return tuple(getattr(settings, field.name) for field in dataclasses.fields(KafkaSettings))


def refusal(error: KafkaError) -> str | None:
    """What to check when ``error`` is one retrying cannot fix (a login or certificate refused), else None."""
    hint = _REFUSALS.get(error.code())
    return f"{error.str()}; {hint}" if hint else None


def raise_if_refused(bootstrap_servers: str, error: KafkaError) -> None:
    """An error callback: raise :class:`KafkaAuthError` for a refused login or certificate, ignore the rest
    (librdkafka reconnects by itself)."""
    why = refusal(error)
    if why is not None:
        raise KafkaAuthError(f"Kafka at {bootstrap_servers}: {why}")


def flush(producer: Any, timeout_s: float) -> int:
    """``producer.flush(timeout_s)`` in short slices: an exception of the error callback leaves the slice that
    served it (one long flush would raise it only at its end). Returns how many messages are still queued."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = int(producer.flush(max(min(FLUSH_SLICE_S, deadline - time.monotonic()), 0)))
        if not left or time.monotonic() >= deadline:
            return left


def msk_iam_token(region: str, _oauthbearer_config: str | None = None) -> tuple[str, float]:
    """An MSK IAM token signed with the process's AWS credentials (a Lambda function's role), and when it
    expires in seconds since the epoch: confluent-kafka's ``oauth_cb`` contract (the signer gives milliseconds)."""
    token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    return token, expiry_ms / 1000


def _read_secret(settings: KafkaSettings, secret_id: str, required: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object of a Secrets Manager secret, with a string for each ``required`` key."""
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
    client = boto3.client(
        "secretsmanager", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url or None, config=config
    )
    try:
        secret = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        raise KafkaSecretUnavailable(f"cannot read the Kafka secret {secret_id} from Secrets Manager: {exc}") from exc
    try:
        fields = json.loads(secret)
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or not all(isinstance(fields.get(key), str) for key in required):
        raise KafkaSecretUnavailable(f"the Kafka secret {secret_id} is not JSON with a string {' and '.join(required)}")
    return fields


def read_sasl_secret(settings: KafkaSettings) -> tuple[str, str]:
    """The ``username`` and ``password`` of the JSON secret ``KAFKA_SASL_SECRET_ARN`` (MSK SCRAM's shape)."""
    assert settings.kafka_sasl_secret_arn
    fields = _read_secret(settings, settings.kafka_sasl_secret_arn, ("username", "password"))
    return fields["username"], fields["password"]


def read_tls_secret(settings: KafkaSettings) -> dict[str, str]:
    """librdkafka's in-memory client certificate and key from the secret ``KAFKA_SSL_SECRET_ARN``, in the
    event source mapping's format for mutual TLS (``certificate``, ``privateKey``, ``privateKeyPassword``)."""
    assert settings.kafka_ssl_secret_arn
    fields = _read_secret(settings, settings.kafka_ssl_secret_arn, ("certificate", "privateKey"))
    properties = {"ssl.certificate.pem": fields["certificate"], "ssl.key.pem": fields["privateKey"]}
    if isinstance(fields.get("privateKeyPassword"), str) and fields["privateKeyPassword"]:
        properties["ssl.key.password"] = fields["privateKeyPassword"]
    return properties


def client_config(
    settings: KafkaSettings,
    *,
    read_secret: Callable[[KafkaSettings], tuple[str, str]] = read_sasl_secret,
    read_tls: Callable[[KafkaSettings], dict[str, str]] = read_tls_secret,
    sign: Callable[[str, str | None], tuple[str, float]] = msk_iam_token,
) -> dict[str, Any]:
    """librdkafka properties to reach the cluster of ``settings``: address, security, credentials, and an
    ``error_cb`` raising :class:`KafkaAuthError`. A caller adds its role's properties; one that sets its own
    ``error_cb`` calls :func:`raise_if_refused` from it."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol.lower(),
        "error_cb": functools.partial(raise_if_refused, settings.kafka_bootstrap_servers),
    }
    mechanism = settings.kafka_sasl_mechanism
    if mechanism == "OAUTHBEARER":
        config["sasl.mechanism"] = mechanism
        config["oauth_cb"] = functools.partial(sign, settings.aws_region)
    elif mechanism is not None:
        if settings.kafka_sasl_secret_arn:
            username, password = read_secret(settings)
        else:
            assert settings.kafka_sasl_username and settings.kafka_sasl_password  # the settings' validator
            username, password = settings.kafka_sasl_username, settings.kafka_sasl_password.get_secret_value()
        config |= {"sasl.mechanism": mechanism, "sasl.username": username, "sasl.password": password}
    tls_files = {
        "ssl.ca.location": settings.kafka_ssl_ca_location,
        "ssl.certificate.location": settings.kafka_ssl_certificate_location,
        "ssl.key.location": settings.kafka_ssl_key_location,
    }
    config |= {name: value for name, value in tls_files.items() if value}
    if settings.kafka_ssl_key_password is not None:
        config["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    if settings.kafka_ssl_secret_arn:
        config |= read_tls(settings)
    return config
