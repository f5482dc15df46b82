"""The order contract: every validation rule lives here (the README lists them).

Validation is strict (no coercion: ``"1"`` is not an integer), unknown keys are refused so that nothing sent
is silently dropped, and every string must be storable by PostgreSQL (no NUL, no lone surrogate).
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from types import GenericAlias
from typing import Annotated, Any, NamedTuple, get_args, get_origin

import msgspec
from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import AfterValidator, BaseModel, ConfigDict, FailFast, Field, StringConstraints, ValidationError

ORDER_UID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # pydantic's (Rust) regex: `$` is the very end of the text
# Python's `$` also matches before a final newline ("abc\n"): ``\Z`` is the very end, so `.match` is a full match.
ORDER_UID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
# The version of the canonical form (``Order.canonical_json``), stored with each order's content hash. Bump it
# whenever the canonical form changes: orders stored under another version are compared by re-canonicalising
# them, never by hash, so a redelivery is never mistaken for a conflict.
CANONICAL_VERSION = 1
PG_BIGINT_MAX = 2**63 - 1
PG_INT_MAX = 2**31 - 1
MAX_ITEMS = 1000

# PostgreSQL text cannot hold NUL. Checked as a pattern of every text field, which names the field; JSON can
# only write a NUL as ``\u0000``, so a value without one skips the patterns (_read_fast). Unpaired surrogates
# never get this far: the JSON parsers refuse them.
NO_NUL = r"^[^\x00]*$"


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")


def _rfc3339_utc(value: str) -> str:
    """Parse an RFC 3339 timestamp with a zone and give it back in UTC ``...Z`` form, as it is stored."""
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp with a time zone, e.g. 2021-11-26T06:22:19Z")
    try:
        parsed = datetime.fromisoformat(value)  # checks the date is one (Python 3.11 reads the Z)
        # Matched above, 20 characters are whole seconds in UTC, the stored form already: most orders' dates.
        stored = value if len(value) == 20 and value[19] == "Z" else format_timestamp(parsed)
    except ValueError as exc:
        raise ValueError(f"not a valid date/time: {exc}") from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise ValueError("out of range: the time in UTC must fall within years 1 to 9999") from None
    return stored


def format_timestamp(moment: datetime) -> str:
    """The one textual form of a timestamp: UTC, ``Z``, microseconds only when there are any."""
    moment = moment.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.strftime(pattern)


Text128 = Annotated[str, StringConstraints(min_length=0, max_length=128, pattern=NO_NUL)]
Text1to128 = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NO_NUL)]
Text1to16 = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=NO_NUL)]
Text1to256 = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NO_NUL)]
Text1to32 = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=NO_NUL)]
Text1to512 = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=NO_NUL)]
Text1to64 = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
Text256 = Annotated[str, StringConstraints(min_length=0, max_length=256, pattern=NO_NUL)]
Text32 = Annotated[str, StringConstraints(min_length=0, max_length=32, pattern=NO_NUL)]
Text64 = Annotated[str, StringConstraints(min_length=0, max_length=64, pattern=NO_NUL)]
LOCALE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"
Locale = Annotated[str, StringConstraints(max_length=16, pattern=LOCALE_PATTERN)]
Money = Annotated[int, Field(ge=0, le=PG_BIGINT_MAX)]
BigId = Annotated[int, Field(ge=0, le=PG_BIGINT_MAX)]
SmallCount = Annotated[int, Field(ge=0, le=PG_INT_MAX)]
PHONE_PATTERN = r"^\+?[0-9]{5,15}$"
Phone = Annotated[str, StringConstraints(max_length=16, pattern=PHONE_PATTERN)]
EMAIL_PATTERN = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
CURRENCY_PATTERN = r"^[A-Z]{3}$"
Currency = Annotated[str, StringConstraints(pattern=CURRENCY_PATTERN)]
OrderUid = Annotated[str, StringConstraints(pattern=ORDER_UID_PATTERN)]
Timestamp = Annotated[str, AfterValidator(_rfc3339_utc)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Delivery(_Strict):
    name: Text1to256
    phone: Phone
    zip: Text1to32
    city: Text1to128
    address: Text1to512
    region: Text128
    email: Email


class Payment(_Strict):
    transaction: Text1to64
    request_id: Text64
    currency: Currency
    provider: Text1to64
    amount: Money
    payment_dt: Annotated[int, Field(ge=0, le=PG_BIGINT_MAX)]
    bank: Text64
    delivery_cost: Money
    goods_total: Money
    custom_fee: Money


class Item(_Strict):
    chrt_id: BigId
    track_number: Text1to64
    price: Money
    rid: Text1to64
    name: Text1to256
    sale: Annotated[int, Field(ge=0, le=100)]
    size: Text32
    total_price: Money
    nm_id: BigId
    brand: Text128
    status: SmallCount


class Order(_Strict):
    order_uid: OrderUid
    track_number: Text1to64
    entry: Text1to32
    delivery: Delivery
    payment: Payment
    # fail_fast: the first refused item is reason enough, and 300,000 refused items would list 3 million errors.
    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS, fail_fast=True)]
    locale: Locale
    internal_signature: Text256
    customer_id: Text1to64
    delivery_service: Text1to64
    shardkey: Text1to16
    sm_id: SmallCount
    date_created: Timestamp
    oof_shard: Text1to16

    def to_json(self) -> bytes:
        """The canonical JSON of the order: what is hashed, stored, served and cached (compact, in the model's
        field order, timestamps in UTC). The compiled serializer itself, as bytes: ``model_dump_json`` is it
        behind a Python wrapper, and gives text to encode again."""
        return self.__pydantic_serializer__.to_json(self)


class DuplicateKey(ValueError):
    """A JSON object names the same key twice: which value was meant is ambiguous, so the order is refused."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} appears more than once in one object")
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return document


def read_json(raw: bytes | str) -> Any:
    """Python's reading of a JSON document, refusing duplicate keys (``DuplicateKey``); integers stay text, so
    a number of any length is read (the order contract bounds them, not the reader)."""
    return json.loads(raw, object_pairs_hook=_unique_keys, parse_int=str)


class ValidOrder(NamedTuple):
    """An order the contract accepts, as the ingest stores it."""

    order_uid: str
    canonical_json: bytes  # what is hashed, stored, served and cached: ``Order.to_json()``'s bytes
    # Its fields, named as the contract's (``content.delivery.city``, ``content.items[0].price``): the order as
    # msgspec read it, or, on the contract's own path, its ``Order``.
    content: Any


# The contract's compiled validator, called directly: ``Order.model_validate_json`` is it behind a wrapper whose
# keyword arguments cost more than a tenth of validating an order.
_validate_json = Order.__pydantic_validator__.validate_json


def parse_order(raw: bytes | str) -> ValidOrder:
    """Validate raw JSON into an order; raises ``ValidationError`` or ``DuplicateKey``."""
    data = raw if isinstance(raw, bytes) else raw.encode(errors="surrogatepass")
    read = _read_fast(data)
    if read is None:  # refused, or one the fast reader leaves to the contract: the model says what it is
        order: Order = _validate_json(raw)  # the compiled parser; it keeps the last of duplicate keys
        read = order, order.to_json()
    content, canonical = read
    # Duplicate keys, proved absent cheaply (both readers keep the last of them): every key of the document is
    # a key of the model (extra keys are refused) and each key is followed by one ':'. So the raw text's ':'
    # are its keys plus those inside its strings, and the canonical JSON's are the model's keys plus the same
    # strings' (a zone offset in date_created may lose one). Equal counts prove there is no duplicate, unless a
    # string hides a ':' as an escape ("\u003a"): then, and whenever the counts differ, read the document.
    escaped_colon = b"\\" in data and b"\\u003" in data  # the first test is a memchr: most orders have no '\\'
    if escaped_colon or data.count(b":") != canonical.count(b":"):
        read_json(data)
    return ValidOrder(content.order_uid, canonical, content)


# -- the contract, compiled for msgspec ---------------------------------------------------------------------
#
# Reading an order with the model above builds a pydantic model of each of its parts: about 14 µs of a 1.3 KB
# order, and 6.5 more to write its canonical JSON: over a quarter of ingest_order's CPU. msgspec reads the JSON
# into slotted structs under the same rules in about 6, and writes the same bytes in 2 (docs/design.md). The
# structs are compiled from the model's own fields and constraints, so the rules live in one place, and a rule
# the compiler does not know stops the import rather than going unchecked. The model stays the contract: what
# the fast reader refuses, or leaves to it, the model reads, and a refused order's errors are always the
# model's. So the fast reader must never be looser than the model (a unit test gives both values at and beyond
# the edge of every rule), and it never explains.


def _python_pattern(pattern: str) -> str:
    """A pattern of the model (Rust's regex syntax, where ``$`` is the very end of the text) for Python's ``re``
    (where ``$`` also matches before a final newline, and ``\\Z`` is the very end)."""
    if pattern.count("$") != 1 or not pattern.endswith("$") or not pattern.startswith("^"):
        raise TypeError(f"cannot compile the pattern {pattern!r}: only ^...$ patterns are translated")
    return pattern[:-1] + r"\Z"


def _compiled_type(annotation: Any, metadata: list[Any]) -> Any:
    """``annotation`` with its constraints as msgspec reads them; ``TypeError`` for one it would not enforce."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and not metadata:
        return _compiled(annotation)
    constraints: dict[str, Any] = {}
    for rule in metadata:
        if isinstance(rule, StringConstraints) and annotation is str:
            unknown = {"strip_whitespace", "to_upper", "to_lower", "strict", "ascii_only"}
            if any(getattr(rule, name) is not None for name in unknown):
                raise TypeError(f"cannot compile {rule!r}")
            constraints |= {"min_length": rule.min_length, "max_length": rule.max_length}
            # NUL is refused before this reader runs: a value that may hold one goes to the model (_read_fast).
            if rule.pattern is not None and rule.pattern != NO_NUL:
                constraints["pattern"] = _python_pattern(str(rule.pattern))
        elif isinstance(rule, (Ge, Le)) and annotation is int:
            constraints |= {"ge": rule.ge} if isinstance(rule, Ge) else {"le": rule.le}
        elif isinstance(rule, (MinLen, MaxLen)) and get_origin(annotation) is list:
            constraints |= (
                {"min_length": rule.min_length} if isinstance(rule, MinLen) else {"max_length": rule.max_length}
            )
        elif isinstance(rule, FailFast):  # msgspec stops at the first error anyway
            pass
        elif isinstance(rule, AfterValidator) and rule.func is _rfc3339_utc and annotation is str:
            pass  # checked after reading (_read_fast)
        else:
            raise TypeError(f"cannot compile {rule!r} on {annotation!r}")
    if get_origin(annotation) is list:
        [item] = get_args(annotation)
        annotation = GenericAlias(list, (_compiled_type(item, []),))
    elif annotation not in (str, int):
        raise TypeError(f"cannot compile the type {annotation!r}")
    constraints = {name: value for name, value in constraints.items() if value is not None}
    return Annotated[annotation, msgspec.Meta(**constraints)] if constraints else annotation


def _compiled(model: type[BaseModel]) -> type[msgspec.Struct]:
    """The model as a msgspec struct of the same fields in the same order, each with its constraints."""
    config, decorators = model.model_config, model.__pydantic_decorators__
    if config != {"strict": True, "extra": "forbid", "frozen": True} or any(
        getattr(decorators, kind.name) for kind in dataclasses.fields(decorators)
    ):  # a setting, validator or serializer of its own would read or write an order otherwise
        raise TypeError(f"cannot compile {model.__name__}: only strict, frozen models refusing extra keys compile")
    fields = []
    for name, info in model.model_fields.items():
        if not info.is_required() or info.alias or info.exclude:  # a default, another key, a field never written
            raise TypeError(f"cannot compile {model.__name__}.{name}: only required fields under their own name")
        fields.append((name, _compiled_type(info.annotation, info.metadata)))
    # gc=False: structs of strings and ints hold no cycles, and thousands of orders in a batch are not tracked.
    return msgspec.defstruct(
        f"Read{model.__name__}", fields, forbid_unknown_fields=True, frozen=True, gc=False, module=__name__
    )


_FAST_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_compiled(Order))  # strict, as the model: no coercion
_FAST_ENCODER = msgspec.json.Encoder()


def _read_fast(data: bytes) -> tuple[Any, bytes] | None:
    """The order ``data`` holds and its canonical JSON, read by msgspec; None when it is refused, or is one the
    model reads itself: a value that may hold a NUL (JSON writes it only as ``\\u0000``; the model then names
    the field), or whose date_created is not already in the stored form (the model converts it)."""
    if b"\\u0000" in data:
        return None
    try:
        content = _FAST_DECODER.decode(data)
        if _rfc3339_utc(content.date_created) != content.date_created:  # its form and its date, as stored
            return None
    except (msgspec.DecodeError, ValueError):  # a ValidationError is a DecodeError
        return None
    return content, _FAST_ENCODER.encode(content)


PATTERN_MESSAGES = {
    NO_NUL: "must not contain NUL characters (\\u0000): they cannot be stored",
    ORDER_UID_PATTERN: "must be 1 to 64 characters: letters, digits, '-' or '_'",
    PHONE_PATTERN: "must be a phone number: 5 to 15 digits, optionally after a '+'",
    EMAIL_PATTERN: "must be an e-mail address like name@example.com",
    CURRENCY_PATTERN: "must be an ISO 4217 currency code of three capital letters, like USD",
    LOCALE_PATTERN: "must be a language tag like en or en-US",
}


# What one refused order lists of its errors (a dead letter keeps no more); the count says how many there were.
MAX_LISTED_ERRORS = 50


def describe_errors(error: ValidationError, limit: int = MAX_LISTED_ERRORS) -> list[dict[str, str]]:
    """The first ``limit`` validation errors as ``{"field", "message"}`` pairs a person can read (no echo of the
    input)."""
    return [
        {
            "field": ".".join(str(p) for p in e["loc"]) or "(order)",
            "message": PATTERN_MESSAGES.get(e.get("ctx", {}).get("pattern", ""), e["msg"]),
        }
        for e in error.errors(include_url=False, include_input=False)[:limit]
    ]


# -- documents no order could be -------------------------------------------------------------------------
#
# The compiled validator lists an error for every key the model does not know: a 1 MB value of 100,000 unknown
# keys costs 100,000 errors, hundreds of megabytes and seconds to list. No order has more keys than the model
# names (its items at most MAX_ITEMS times), nor more values: a value with more ':' or ',' than that is read
# and walked in Python first (memory in proportion to the value), and one with keys or items no order has is
# refused with the first few of them. Values within the bound go to the compiled validator as ever.

_FIELDS: dict[type[BaseModel], frozenset[str]] = {
    model: frozenset(model.model_fields) for model in (Order, Delivery, Payment, Item)
}
_NESTED: dict[str, type[BaseModel]] = {"delivery": Delivery, "payment": Payment}
MAX_KEYS = len(_FIELDS[Order]) + len(_FIELDS[Delivery]) + len(_FIELDS[Payment]) + MAX_ITEMS * len(_FIELDS[Item])


def beyond_any_order(raw: bytes) -> bool:
    """True when ``raw`` may hold more keys or list entries than any order: ':' and ',' counted, each a memchr.
    A value of fewer bytes than that holds fewer of either, so most orders are not counted at all (the two
    counts cost about 2 µs an order, a few per cent of the ingest's Python)."""
    return len(raw) > MAX_KEYS and (raw.count(b":") > MAX_KEYS or raw.count(b",") > MAX_KEYS + MAX_ITEMS)


def structural_errors(document: dict[str, Any], limit: int = MAX_LISTED_ERRORS) -> tuple[list[dict[str, str]], int]:
    """The keys no order has and item lists longer than any order's, found in a parsed document: the first
    ``limit`` of them, and how many there are. Everything else is left to the model."""
    screen = _Screen(limit)
    screen.walk(document, Order, "")
    return screen.listed, screen.found


class _Screen:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.listed: list[dict[str, str]] = []
        self.found = 0

    def refuse(self, field: str, message: str) -> None:
        if len(self.listed) < self.limit:
            self.listed.append({"field": field, "message": message})

    def walk(self, node: dict[str, Any], model: type[BaseModel], path: str) -> None:
        fields = _FIELDS[model]
        unknown = len(node.keys() - fields)  # counted in C; only the few listed are visited in Python
        self.found += unknown
        for key in node if unknown else ():
            if len(self.listed) == self.limit:
                break
            if key not in fields:
                self.refuse(f"{path}{key}", "Extra inputs are not permitted")
        if model is not Order:
            return
        for key, nested in _NESTED.items():
            if isinstance(node.get(key), dict):
                self.walk(node[key], nested, f"{key}.")
        items = node.get("items")
        if isinstance(items, list) and len(items) > MAX_ITEMS:
            self.found += 1
            self.refuse("items", f"List should have at most {MAX_ITEMS} items after validation, not {len(items)}")
        elif isinstance(items, list):
            for position, item in enumerate(items):
                if isinstance(item, dict):
                    self.walk(item, Item, f"items.{position}.")
