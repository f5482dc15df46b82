"""Lambda Kafka events for tests, built from the shared fixture so every test uses the platform's shape."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

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
