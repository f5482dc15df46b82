"""Kafka credentials from Secrets Manager (moto), in the shapes AWS gives them: an MSK SCRAM secret
({"username", "password"}) and the event source mapping's mutual-TLS secret ({"certificate", "privateKey",
"privateKeyPassword"}). The client configuration reads them; a malformed secret says what it lacks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest

from orders_core.adapters.kafka_client import KafkaSecretUnavailable, client_config
from orders_core.config import Settings

CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"
PRIVATE_KEY = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE...\n-----END ENCRYPTED PRIVATE KEY-----\n"


@pytest.fixture
def secret(stack_env: dict[str, str]) -> Iterator[Callable[[object], str]]:
    """Makes a secret holding a value (JSON-encoded unless a string); every one is deleted after the test."""
    client = boto3.client("secretsmanager", endpoint_url=stack_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    made: list[str] = []

    def make(value: object) -> str:
        text = value if isinstance(value, str) else json.dumps(value)
        arn: str = client.create_secret(Name=f"AmazonMSK_orders-{uuid.uuid4().hex[:8]}", SecretString=text)["ARN"]
        made.append(arn)
        return arn

    yield make
    for arn in made:
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def scram(arn: str) -> Settings:
    return Settings.model_validate(
        {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_SECRET_ARN": arn}
    )


def mutual_tls(arn: str) -> Settings:
    return Settings.model_validate({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_SECRET_ARN": arn})


def test_scram_credentials_come_from_the_msk_secret(secret: Callable[[object], str]) -> None:
    config = client_config(scram(secret({"username": "orders", "password": "from-the-vault"})))
    assert (config["sasl.username"], config["sasl.password"]) == ("orders", "from-the-vault")


def test_the_client_certificate_comes_from_the_mappings_mutual_tls_secret(secret: Callable[[object], str]) -> None:
    arn = secret({"certificate": CERTIFICATE, "privateKey": PRIVATE_KEY, "privateKeyPassword": "kp"})
    config = client_config(mutual_tls(arn))
    assert config["ssl.certificate.pem"] == CERTIFICATE and config["ssl.key.pem"] == PRIVATE_KEY
    assert config["ssl.key.password"] == "kp" and config["security.protocol"] == "ssl"


@pytest.mark.parametrize(
    ("settings_for", "value", "lacks"),
    [
        (scram, {"username": "orders"}, "a string username and password"),
        (scram, "not json", "a string username and password"),
        (mutual_tls, {"certificate": CERTIFICATE}, "a string certificate and privateKey"),
    ],
)
def test_a_secret_without_what_it_must_hold_says_what_it_lacks(
    secret: Callable[[object], str], settings_for: Callable[[str], Settings], value: object, lacks: str
) -> None:
    with pytest.raises(KafkaSecretUnavailable, match=lacks):
        client_config(settings_for(secret(value)))


def test_a_missing_secret_is_unavailable_with_the_reason(stack_env: dict[str, str]) -> None:
    with pytest.raises(KafkaSecretUnavailable, match="cannot read the Kafka secret"):
        client_config(scram("arn:aws:secretsmanager:us-east-1:123456789012:secret:AmazonMSK_nothing-here"))
