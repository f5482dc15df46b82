"""Reading the dead-letter queue back in tests."""

from __future__ import annotations

import json
from typing import Any

from orders_core.config import Settings
from orders_core.dead_letters import make_sqs_client


def drain(settings: Settings) -> list[dict[str, Any]]:
    """Every letter in the queue, removed from it."""
    sqs = make_sqs_client(settings)
    url = sqs.get_queue_url(QueueName=settings.dlq_queue_name)["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
