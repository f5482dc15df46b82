"""One list of order fields: the model. A field added to it must reach the schema (a migration), the statements
that write and read an order, and the generator; each test names what is missing and where to add it."""

from __future__ import annotations

import json
import re
from importlib import resources

import pytest
from pydantic import BaseModel

from orders_core.adapters import postgres
from orders_core.domain.model import Delivery, Item, Order, Payment, parse_order
from orders_core.generator.builder import iter_orders

# Each table and the part of the model it holds.
TABLES: dict[str, type[BaseModel]] = {"orders": Order, "deliveries": Delivery, "payments": Payment, "items": Item}
NESTED = {"delivery", "payment", "items"}  # Order's fields that are tables of their own


def scalar_fields(table: str) -> set[str]:
    return set(TABLES[table].model_fields) - (NESTED if table == "orders" else set())


def schema_columns() -> dict[str, set[str]]:
    """Every table's columns once every migration has run (CREATE TABLE, then ALTER TABLE ... ADD COLUMN)."""
    columns: dict[str, set[str]] = {}
    scripts = sorted(resources.files("orders_core.adapters.migrations").iterdir(), key=lambda f: f.name)
    for script in (s for s in scripts if s.name.endswith(".sql")):
        sql = re.sub(r"--[^\n]*", "", script.read_text(encoding="utf-8"))
        for table, body in re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+) \((.*?)\n\);", sql, re.S):
            columns[table] = {
                line.split()[0]
                for line in body.split("\n")
                if line.strip() and not line.strip().startswith(("PRIMARY", "UNIQUE", "CHECK", "CONSTRAINT"))
            }
        for table, column in re.findall(r"ALTER TABLE (\w+)\s+ADD COLUMN (?:IF NOT EXISTS )?(\w+)", sql):
            columns.setdefault(table, set()).add(column)
    return columns


@pytest.mark.parametrize("table", TABLES)
def test_every_field_of_the_model_has_a_column(table: str) -> None:
    missing = scalar_fields(table) - schema_columns().get(table, set())
    assert not missing, f"add a migration with ALTER TABLE {table} ADD COLUMN for {sorted(missing)}"


@pytest.mark.parametrize("table", TABLES)
def test_every_field_of_the_model_is_written_and_read_back(table: str) -> None:
    unwritten = scalar_fields(table) - set(postgres.COPY_COLUMNS[table])
    assert not unwritten, f"{sorted(unwritten)} of {table} not written: add them to adapters/postgres.py's COPY_COLUMNS"
    unread = {field for field in scalar_fields(table) if not re.search(rf"\b{field}\b", postgres._ORDER_JSON)}
    assert not unread, f"{sorted(unread)} of {table} not read: add them to adapters/postgres.py's _ORDER_JSON"


def test_the_generator_fills_exactly_the_models_fields() -> None:
    [(_uid, value)] = list(iter_orders(1, seed=1))
    document = json.loads(value)
    assert set(document) == set(Order.model_fields)
    assert set(document["delivery"]) == set(Delivery.model_fields)
    assert set(document["payment"]) == set(Payment.model_fields)
    assert {key for item in document["items"] for key in item} == set(Item.model_fields)


@pytest.mark.parametrize(
    ("escaped", "created"),
    [(False, "2021-11-26T06:22:19Z"), (True, "2021-11-26T06:22:19Z"), (False, "2021-11-26T09:22:19+03:00")],
    ids=["plain", "escaped", "read-by-the-model"],  # an offset in date_created: the model converts it
)
def test_each_value_is_copied_into_its_own_column(escaped: bool, created: str) -> None:
    [(_uid, value)] = list(iter_orders(1, seed=5))
    document = json.loads(value) | {"date_created": created}
    if escaped:  # a value COPY must read escaped sends the whole order down the escaping path
        document["entry"] = "a\tb\\c"
    accepted = parse_order(json.dumps(document))
    order = accepted.content
    assert order.date_created == "2021-11-26T06:22:19Z"
    rows = postgres.copy_rows([(accepted, "ab" * 32)])
    parts = {"orders": order, "deliveries": order.delivery, "payments": order.payment}
    for table, part in parts.items():
        [line] = rows[table].decode().splitlines()
        copied = dict(zip(postgres.COPY_COLUMNS[table], line.split("\t"), strict=True))
        for field in scalar_fields(table):
            expected = str(getattr(part, field))
            assert copied[field] == (expected.replace("\\", "\\\\").replace("\t", "\\t") if escaped else expected)
        assert copied["order_uid"] == order.order_uid
    lines = rows["items"].decode().splitlines()
    assert len(lines) == len(order.items)
    for position, (line, item) in enumerate(zip(lines, order.items, strict=True)):
        copied = dict(zip(postgres.COPY_COLUMNS["items"], line.split("\t"), strict=True))
        assert copied["position"] == str(position) and copied["order_uid"] == order.order_uid
        assert all(copied[field] == str(getattr(item, field)) for field in scalar_fields("items"))
