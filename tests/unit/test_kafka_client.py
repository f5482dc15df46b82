"""One Kafka client configuration from the settings: librdkafka's properties, combinations refused at start,
credentials never shown, and MSK IAM tokens handed to confluent-kafka as it expects."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError
from pydantic import ValidationError

from orders_core.adapters import kafka_client
from orders_core.adapters.kafka_client import KafkaAuthError, client_config, raise_if_refused
from orders_core.config import Settings


def settings(**env: str) -> Settings:
    """Settings from these environment variables only (the process's own are ignored)."""
    return Settings.model_validate(env)


def without_callbacks(config: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in config.items() if not name.endswith("_cb")}


def no_secret(_settings: Settings) -> tuple[str, str]:
    raise AssertionError("no secret to read")


@pytest.mark.parametrize(
    ("env", "properties"),
    [
        ({}, {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "plaintext"}),
        (
            {
                "KAFKA_BOOTSTRAP_SERVERS": "b-1.example:9096",
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": "orders",
                "KAFKA_SASL_PASSWORD": "pw",
            },
            {
                "bootstrap.servers": "b-1.example:9096",
                "security.protocol": "sasl_ssl",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "orders",
                "sasl.password": "pw",
            },
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SSL",
                "KAFKA_SSL_CA_LOCATION": "/certs/ca.pem",
                "KAFKA_SSL_CERTIFICATE_LOCATION": "/certs/client.pem",
                "KAFKA_SSL_KEY_LOCATION": "/certs/client.key",
                "KAFKA_SSL_KEY_PASSWORD": "kp",
            },
            {
                "bootstrap.servers": "127.0.0.1:9092",
                "security.protocol": "ssl",
                "ssl.ca.location": "/certs/ca.pem",
                "ssl.certificate.location": "/certs/client.pem",
                "ssl.key.location": "/certs/client.key",
                "ssl.key.password": "kp",
            },
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                "KAFKA_SASL_MECHANISM": "plain",
                "KAFKA_SASL_USERNAME": "key",
                "KAFKA_SASL_PASSWORD": "secret",
            },
            {
                "bootstrap.servers": "127.0.0.1:9092",
                "security.protocol": "sasl_ssl",
                "sasl.mechanism": "PLAIN",
                "sasl.username": "key",
                "sasl.password": "secret",
            },
        ),
    ],
    ids=["plaintext", "scram", "mutual-tls", "plain"],
)
def test_the_settings_become_librdkafkas_own_properties(env: dict[str, str], properties: dict[str, Any]) -> None:
    config = client_config(settings(**env), read_secret=no_secret)
    assert without_callbacks(config) == properties
    assert callable(config["error_cb"])


def test_the_credentials_come_from_the_secret_when_one_is_named() -> None:
    read: list[str | None] = []

    def read_secret(s: Settings) -> tuple[str, str]:
        read.append(s.kafka_sasl_secret_arn)
        return "from-secret", "rotated"

    config = client_config(
        settings(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
            KAFKA_SASL_SECRET_ARN="arn:aws:secretsmanager:eu-west-1:1:secret:AmazonMSK_orders",
        ),
        read_secret=read_secret,
    )
    assert (config["sasl.username"], config["sasl.password"]) == ("from-secret", "rotated")
    assert read == ["arn:aws:secretsmanager:eu-west-1:1:secret:AmazonMSK_orders"]


def test_msk_iam_hands_confluent_kafka_a_token_and_its_expiry_in_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN OAUTHBEARER and a stubbed AWS signer WHEN librdkafka asks for a token THEN the oauth_cb answers
    the signed token and its expiry in seconds since the epoch (the signer answers milliseconds), signed for
    AWS_REGION."""
    signed_for: list[str] = []

    class Signer:
        @staticmethod
        def generate_auth_token(region: str) -> tuple[str, int]:
            signed_for.append(region)
            return "signed-token", 1_767_225_600_500

    monkeypatch.setattr(kafka_client, "MSKAuthTokenProvider", Signer)
    config = client_config(
        settings(KAFKA_SECURITY_PROTOCOL="SASL_SSL", KAFKA_SASL_MECHANISM="OAUTHBEARER", AWS_REGION="eu-west-1")
    )
    assert config["sasl.mechanism"] == "OAUTHBEARER" and "sasl.password" not in config
    token, expiry = config["oauth_cb"]("")  # librdkafka passes sasl.oauthbearer.config, empty here
    assert (token, expiry) == ("signed-token", 1_767_225_600.5)
    assert signed_for == ["eu-west-1"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
            "needs KAFKA_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
                "KAFKA_SASL_USERNAME": "u",
            },
            "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD, or KAFKA_SASL_SECRET_ARN",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_SECRET_ARN": "arn",
            },
            "KAFKA_SASL_SECRET_ARN holds the username and password",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER", "KAFKA_SASL_PASSWORD": "p"},
            "signs with the AWS role",
        ),
        ({"KAFKA_SASL_USERNAME": "u"}, "set without SASL"),
        ({"KAFKA_SSL_CA_LOCATION": "/ca.pem"}, "KAFKA_SSL_CA_LOCATION set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTIFICATE_LOCATION": "/c.pem"},
            "needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"}, "kafka_sasl_mechanism"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka_security_protocol"),
    ],
)
def test_combinations_librdkafka_would_only_fail_on_later_are_refused_at_start(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(**env)
    assert message in str(refused.value)


def test_the_passwords_are_never_shown() -> None:
    loaded = settings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="PLAIN",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="hunter2",
        KAFKA_SSL_KEY_PASSWORD="keypass",
    )
    shown = f"{loaded!r} {loaded} {loaded.model_dump()} {loaded.model_dump_json()}"
    assert "hunter2" not in shown and "keypass" not in shown


@pytest.mark.parametrize(
    ("code", "hint"),
    [(KafkaError._AUTHENTICATION, "KAFKA_SASL_USERNAME"), (KafkaError._SSL, "KAFKA_SSL_CA_LOCATION")],
)
def test_a_refused_login_or_certificate_is_raised_from_the_error_callback(code: int, hint: str) -> None:
    with pytest.raises(KafkaAuthError) as raised:
        raise_if_refused("broker:9096", KafkaError(code, "the broker said no"))
    assert "broker:9096" in str(raised.value) and "the broker said no" in str(raised.value)
    assert hint in str(raised.value)


@pytest.mark.parametrize("code", [KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE])
def test_a_broker_that_is_down_is_left_to_librdkafka_to_reconnect(code: int) -> None:
    raise_if_refused("broker:9092", KafkaError(code))


def test_mutual_tls_files_and_the_mappings_secret_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="KAFKA_SSL_SECRET_ARN holds the client certificate and key"):
        settings(
            KAFKA_SECURITY_PROTOCOL="SSL",
            KAFKA_SSL_SECRET_ARN="arn",
            KAFKA_SSL_CERTIFICATE_LOCATION="/c.pem",
            KAFKA_SSL_KEY_LOCATION="/k.pem",
        )
