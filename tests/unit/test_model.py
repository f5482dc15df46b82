"""The order contract: what is accepted, what is refused and why."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from orders_core.domain.model import (
    ORDER_UID_RE,
    DuplicateKey,
    Order,
    _compiled,
    _read_fast,
    describe_errors,
    parse_order,
)
from tests.support.hostile import HOSTILE


def errors_for(order: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_order(json.dumps(order))
    return describe_errors(caught.value)


def test_sample_order_round_trips_equal(sample_order: dict[str, Any]) -> None:
    order = parse_order(json.dumps(sample_order))
    assert json.loads(order.canonical_json) == sample_order
    assert list(json.loads(order.canonical_json)) == list(sample_order)  # same keys, same order


def test_item_order_is_kept(sample_order: dict[str, Any]) -> None:
    sample = copy.deepcopy(sample_order)
    sample["items"] = [dict(sample["items"][0], name=f"item {i}", chrt_id=i) for i in range(5)]
    assert [i.name for i in parse_order(json.dumps(sample)).content.items] == [f"item {i}" for i in range(5)]


def _holder(document: Any, path: tuple[Any, ...]) -> Any:
    """The object or list that holds the value at ``path``."""
    for key in path[:-1]:
        document = document[key]
    return document


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("order_uid",), "", "order_uid"),
        (("order_uid",), "has space", "order_uid"),
        (("order_uid",), "x" * 65, "order_uid"),
        (("payment", "amount"), "1817", "payment.amount"),  # no coercion from text
        (("payment", "amount"), -1, "payment.amount"),
        (("payment", "amount"), 2**63, "payment.amount"),
        (("payment", "amount"), 18.5, "payment.amount"),
        (("payment", "currency"), "usd", "payment.currency"),
        (("delivery", "email"), "not-an-email", "delivery.email"),
        (("delivery", "phone"), "call me", "delivery.phone"),
        (("delivery", "name"), "a\x00b", "delivery.name"),
        (("delivery", "address"), "x" * 513, "delivery.address"),
        (("date_created",), "2021-11-26 06:22:19", "date_created"),
        (("date_created",), "2021-11-26T06:22:19", "date_created"),  # no zone
        (("date_created",), "2021-02-30T06:22:19Z", "date_created"),
        (("items",), [], "items"),
        (("sm_id",), True, "sm_id"),
        (("items", 0, "sale"), 101, "items.0.sale"),
    ],
)
def test_invalid_values_are_refused_with_the_field_named(
    sample_order: dict[str, Any], path: tuple[Any, ...], value: Any, field: str
) -> None:
    order = copy.deepcopy(sample_order)
    _holder(order, path)[path[-1]] = value
    assert field in [e["field"] for e in errors_for(order)]


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value in a document, objects and lists included."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    return [p for key, value in children for p in [(*path, key), *_places(value, (*path, key))]]


def test_a_nul_in_any_text_is_refused_with_its_field_named(sample_order: dict[str, Any]) -> None:
    paths = [p for p in _places(sample_order) if isinstance(_holder(sample_order, p)[p[-1]], str)]
    assert len(paths) > 20
    for path in paths:
        order = copy.deepcopy(sample_order)
        _holder(order, path)[path[-1]] += "\x00"  # written as the escape \u0000: JSON has no other way
        assert ".".join(map(str, path)) in [e["field"] for e in errors_for(order)], path


@pytest.mark.parametrize("field", ["order_uid", "delivery", "payment", "items", "date_created", "locale"])
def test_missing_required_field_is_refused(sample_order: dict[str, Any], field: str) -> None:
    order = copy.deepcopy(sample_order)
    del order[field]
    assert {"field": field, "message": "Field required"} in errors_for(order)


def test_unpaired_surrogates_cannot_reach_postgres(sample_order: dict[str, Any]) -> None:
    raw = json.dumps(sample_order).replace("Kiryat Mozkin", "\\ud800")
    with pytest.raises(ValidationError, match="Invalid JSON"):
        parse_order(raw)


def test_unknown_fields_are_refused_so_nothing_is_silently_dropped(sample_order: dict[str, Any]) -> None:
    assert "note" in [e["field"] for e in errors_for({**sample_order, "note": "x"})]


def test_every_error_is_reported_at_once(sample_order: dict[str, Any]) -> None:
    order = copy.deepcopy(sample_order)
    order["payment"]["currency"] = 1
    order["delivery"]["email"] = "x"
    del order["entry"]
    assert {"payment.currency", "delivery.email", "entry"} <= {e["field"] for e in errors_for(order)}


def test_error_messages_do_not_echo_the_input(sample_order: dict[str, Any]) -> None:
    order = copy.deepcopy(sample_order)
    order["delivery"]["email"] = "<script>secret</script>"
    assert "secret" not in json.dumps(errors_for(order))


def test_timestamps_with_an_offset_are_stored_in_utc(sample_order: dict[str, Any]) -> None:
    order = parse_order(json.dumps({**sample_order, "date_created": "2021-11-26T09:22:19.5+03:00"}))
    assert order.content.date_created == "2021-11-26T06:22:19.500000Z"
    assert parse_order(order.canonical_json).canonical_json == order.canonical_json  # the stored form is a fixed point


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_timestamps_outside_the_years_1_to_9999_in_utc_are_refused(sample_order: dict[str, Any], moment: str) -> None:
    errors = errors_for({**sample_order, "date_created": moment})
    assert errors == [
        {
            "field": "date_created",
            "message": "Value error, out of range: the time in UTC must fall within years 1 to 9999",
        }
    ]


def test_orders_are_immutable(sample_order: dict[str, Any]) -> None:
    order = Order.model_validate_json(json.dumps(sample_order))
    with pytest.raises(ValidationError):
        order.order_uid = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "duplicated",
    [
        lambda text: '{"order_uid": "smuggled", ' + text[1:],  # the first one would lose, silently
        lambda text: text.replace('"payment": {', '"payment": {"amount": 0, ', 1),
        lambda text: text.replace('"items": [{', '"items": [{"price": 1, ', 1),
        lambda text: '{"order\\u005fuid": "smuggled", ' + text[1:],  # the same key, spelt with an escape
        # A zone offset (one more ':' than the stored form) must not hide a duplicate either,
        lambda text: '{"order_uid": "smuggled", ' + text[1:].replace("06:22:19Z", "09:22:19+03:00"),
        # nor a ':' written as an escape (one fewer ':' in the raw text).
        lambda text: '{"order_uid": "smuggled", ' + text[1:].replace("Kiryat Mozkin", "Kiryat\\u003aMozkin"),
    ],
)
def test_a_duplicate_key_at_any_depth_is_refused(sample_order: dict[str, Any], duplicated: Any) -> None:
    with pytest.raises(DuplicateKey):
        parse_order(duplicated(json.dumps(sample_order)).encode())


def test_an_order_with_escapes_colons_and_an_offset_is_not_mistaken_for_a_duplicate(
    sample_order: dict[str, Any],
) -> None:
    order = copy.deepcopy(sample_order)
    order["delivery"]["address"] = 'Ploshad "Mira": 15 \\ \u00e9'
    order["date_created"] = "2021-11-26T09:22:19+03:00"
    assert parse_order(json.dumps(order).encode()).content.delivery.address == order["delivery"]["address"]


@pytest.mark.parametrize("uid", ["abc\n", "abc\r\n", "\nabc", "abc\x00", "ab c", "a" * 65, ""])
def test_an_order_uid_must_match_in_full(sample_order: dict[str, Any], uid: str) -> None:
    assert not ORDER_UID_RE.match(uid)
    assert "order_uid" in [e["field"] for e in errors_for({**sample_order, "order_uid": uid})]


# -- the fast reader: never looser than the model ------------------------------------------------------------

_ORDER = json.loads((Path(__file__).parents[1] / "fixtures" / "order.json").read_text(encoding="utf-8"))
_PATHS = _places(_ORDER)
# Values at and beyond the edges of every rule, and of every JSON type: what the model and the fast reader
# could read differently (a newline before the end of a pattern, whitespace classes, lengths, bounds).
_EDGES = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"\+?[0-9]{4,16}\n?", fullmatch=True),
    st.from_regex(r"[A-Za-z]{1,4}([-_][A-Za-z0-9]{1,9}){0,2}\n?", fullmatch=True),
    st.from_regex(r"[^@]{0,3}@[^@]{0,3}\.[^@]{0,3}\n?", fullmatch=True),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,7})?([Zz]|[+-][0-9]{2}:[0-9]{2})?\n?",
        fullmatch=True,
    ),
    st.sampled_from(["", "\n", "USD", "USD\n", "usd", "a\x1c@b.c", "a\u00a0@b.c", "a\u2028@b.c", "x" * 64, "x" * 65]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 100, 101, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -0.0, 1.0, 1.5, True, None, [], {}, [{}]]),
)


@given(path=st.sampled_from(_PATHS), value=_EDGES, ascii_only=st.booleans())
@settings(max_examples=2_000, deadline=None)
def test_the_fast_reader_takes_only_what_the_model_takes_and_writes_the_same_bytes(
    path: tuple[Any, ...], value: Any, ascii_only: bool
) -> None:
    """GIVEN an order with any value at any place WHEN msgspec's reader takes it THEN the model takes it too, and
    both write the same canonical JSON: the fast reader decides nothing the contract would decide otherwise."""
    order = copy.deepcopy(_ORDER)
    _holder(order, path)[path[-1]] = value
    raw = json.dumps(order, ensure_ascii=ascii_only).encode()
    read = _read_fast(raw)
    if read is not None:
        assert Order.model_validate_json(raw).to_json() == read[1]


@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_value_is_refused_whichever_reader_reads_it(name: str) -> None:
    build, _reason = HOSTILE[name]
    with pytest.raises((ValidationError, DuplicateKey)):
        parse_order(build(copy.deepcopy(_ORDER)))


def test_a_rule_the_fast_reader_cannot_enforce_stops_its_compilation() -> None:
    """A rule added to the model that the compiler does not know must not go unchecked on the fast path."""

    class Shouting(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
        name: Annotated[str, StringConstraints(to_upper=True)]

    class Defaulted(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
        name: str = "x"

    for model in (Shouting, Defaulted):
        with pytest.raises(TypeError, match="cannot compile"):
            _compiled(model)
