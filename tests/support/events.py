"""Lambda Kafka events for tests, built from the shared fixture so every test uses the platform's shape, and
AWS's own shapes as an independent reference: Powertools for AWS Lambda's parser models of the event and its
batch processor's partial batch response."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Collection
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.parser.models import KafkaMskEventModel, KafkaSelfManagedEventModel
from pydantic import BaseModel

from devstack import ROOT

FIXTURES = ROOT / "tests" / "fixtures"  # the shared event and order samples
FIXTURE = json.loads((FIXTURES / "kafka_event.json").read_text())


def kafka_event(
    values: list[bytes], topic: str = "orders", partition: int = 0, first_offset: int = 0
) -> dict[str, Any]:
    """The fixture event carrying ``values`` as consecutive records of one partition."""
    event = copy.deepcopy(FIXTURE)
    template = event["records"].pop("orders-0")[0]
    event["records"][f"{topic}-{partition}"] = [
        {
            **template,
            "topic": topic,
            "partition": partition,
            "offset": first_offset + i,
            "value": base64.b64encode(value).decode(),
        }
        for i, value in enumerate(values)
    ]
    return event


def order_bytes(order: dict[str, Any]) -> bytes:
    return json.dumps(order).encode()


def aws_event(event: dict[str, Any]) -> BaseModel:
    """The event read by Powertools' model of what the platform sends (raises if it is not that shape)."""
    model = KafkaMskEventModel if event.get("eventSource") == "aws:kafka" else KafkaSelfManagedEventModel
    return model.model_validate(copy.deepcopy(event))


def aws_partial_response(event: dict[str, Any], failed: Collection[tuple[int, int]]) -> list[dict[str, Any]]:
    """``batchItemFailures`` as Powertools' batch processor answers the platform when the records at these
    (partition, offset) failed: AWS's contract, written by someone else."""

    def handle(record: Any) -> None:
        if (record.partition, record.offset) in failed:
            raise ValueError("failed")

    processor = BatchProcessor(event_type=EventType.Kafka)
    response = process_partial_response(event=event, record_handler=handle, processor=processor, context=None)
    return list(response["batchItemFailures"])
