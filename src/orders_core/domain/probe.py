"""The ingest's known-good order: when PostgreSQL refuses every order of a batch for one same reason, this
order (tried and rolled back, never stored) tells whether the store or the orders are at fault.

A fixed order, not a generated one: the probe must not depend on test data, and must pass every rule of the
model today (a unit test parses it).
"""

from __future__ import annotations

import uuid

from .model import ValidOrder, parse_order

_PROBE = b"""{
 "order_uid": "%(uid)s", "track_number": "PROBETRACK", "entry": "PRB",
 "delivery": {"name": "Probe Order", "phone": "+15550000000", "zip": "10001", "city": "New York",
  "address": "1 Probe Street", "region": "NY", "email": "probe@example.com"},
 "payment": {"transaction": "%(uid)s", "request_id": "", "currency": "USD", "provider": "probe",
  "amount": 1500, "payment_dt": 1700000000, "bank": "probe", "delivery_cost": 500, "goods_total": 1000,
  "custom_fee": 0},
 "items": [{"chrt_id": 1, "track_number": "PROBETRACK", "price": 1000, "rid": "probe", "name": "Probe",
  "sale": 0, "size": "0", "total_price": 1000, "nm_id": 1, "brand": "Probe", "status": 202}],
 "locale": "en-US", "internal_signature": "", "customer_id": "probe", "delivery_service": "probe",
 "shardkey": "1", "sm_id": 1, "date_created": "2024-01-01T00:00:00Z", "oof_shard": "1"}"""


def known_good_order() -> ValidOrder:
    """The probe order under a fresh uid (``probe-`` and 32 hex digits), so it never meets a stored one."""
    return parse_order(_PROBE % {b"uid": f"probe-{uuid.uuid4().hex}".encode()})
