"""Test-order builder: realistic, internally consistent orders (and chosen invalid ones), as JSON bytes.

Pure: no Kafka, no settings. :class:`orders_core.generator.producer.GenerateRequest` validates what callers ask for
(count, invalid ratio, items per order); this module trusts its arguments. ``producer.py`` puts the orders
onto Kafka and ``generate_cli.py`` is ``orders-generate``.

Each order belongs to one market of ``markets.py``: its customer lives in a real city of that country (with the
city's region and a postcode of it), writes in its locale, pays in its currency, and buys the market's
products at the market's prices. Amounts are integer minor units of the currency (``markets.py`` says how
they add up).

Speed: Faker is only used to fill small pools (people, products) once per seed; the hot path draws from
those pools with a seeded ``random.Random`` and writes the JSON with an f-string from pre-encoded
fragments. Every string that does not come from the RNG as hex/digits is JSON-encoded once, in the pool.
The unit tests check every generated order against :func:`orders_core.domain.model.parse_order` and its
market's tables.
"""

from __future__ import annotations

import json
import os
import random
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Final

from faker import Faker

from orders_core.generator.markets import GB_INWARD_LETTERS, MARKETS, PEOPLE, Market

DEFAULT_MAX_ITEMS: Final = 5
# Seeded runs are anchored to a fixed moment so that the same seed gives the same bytes on any day.
_SEEDED_ANCHOR: Final = 1_735_689_600  # 2025-01-01T00:00:00Z
_WINDOW_S: Final = 180 * 86_400  # date_created lies within 180 days before the anchor
_PAYMENT_DELAY_S: Final = 900  # payment_dt is 0..15 minutes after date_created

_PRODUCTS_PER_MARKET: Final = 256  # 8 variants each: 2048 slots, a power of two (masked draws)
_SALES: Final = (0, 0, 0, 0, 5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 90)  # 16: masked draws
_ITEM_STATUSES: Final = (202, 202, 202, 202, 200, 201, 203, 300)  # 8
_PROVIDERS: Final = ("wbpay", "wbpay", "paypal", "stripe")  # 4
_ENTRIES: Final = ("WBIL", "WBIL", "WBIL", "WBRU", "WBDE", "WBWEB", "WBAPP", "WBIL")  # 8

# Orders the ingest must reject, generated in this rotation.
INVALID_CLASSES: Final = (
    "not_json",
    "wrong_type",
    "missing_field",
    "nul_in_text",
    "oversized_field",
    "bad_email",
    "bad_phone",
    "bad_currency",
    "bad_timestamp",
    "empty_items",
    "unknown_field",
)


def _j(text: str) -> str:
    """A JSON string literal (UTF-8 kept as is; the whole document is encoded once)."""
    return json.dumps(text, ensure_ascii=False)


def _ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.lower() if "a" <= c <= "z" or "0" <= c <= "9")


@dataclass(frozen=True, slots=True)
class _Variant:
    """One product in one size (8 slots per product, sizes repeated to fill): what an item line needs."""

    head: str  # '"chrt_id":…,"price":…,"size":…,"name":…,"nm_id":…,"brand":…' JSON members
    totals: tuple[int, ...]  # total_price for each entry of _SALES


@dataclass(frozen=True, slots=True)
class _Person:
    """A customer of one market, with what an order of theirs draws from: the market's products and fees."""

    delivery: str  # the whole "delivery" object, JSON
    customer_id: str  # JSON string literal
    locale: str  # JSON string literal
    currency: str  # JSON string literal
    banks: tuple[str, ...]  # 4 JSON string literals
    services: tuple[str, ...]  # 4 JSON string literals
    variants: tuple[_Variant, ...]  # the market's products: _PRODUCTS_PER_MARKET * 8
    delivery_costs: tuple[int, ...]  # 8, minor units
    custom_fee_step: int  # minor units


def _fill(values: tuple[str, ...], n: int) -> tuple[str, ...]:
    return tuple(values[i % len(values)] for i in range(n))


@lru_cache(maxsize=8)
def _pools(seed: int) -> tuple[_Person, ...]:
    """People and products of every market from a seeded Faker per locale (about 0.1-0.2 s; cached per seed)."""
    rng = random.Random(seed)  # one stream, market by market: the same seed gives the same pools
    nm_ids = rng.sample(range(1_000_000, 99_999_999), _PRODUCTS_PER_MARKET * len(MARKETS))
    people: list[_Person] = []
    for index, market in enumerate(MARKETS):
        fake = Faker(market.faker_locale)
        fake.seed_instance(seed)
        ids = nm_ids[index * _PRODUCTS_PER_MARKET : (index + 1) * _PRODUCTS_PER_MARKET]
        people += _people(market, fake, rng, _variants(market, fake, rng, ids))
    assert len(people) == PEOPLE
    return tuple(people)


def postcode(market: Market, prefix: str, rng: random.Random) -> str:
    """A postcode of the city whose postcodes begin with ``prefix`` (the shape rules: ``markets.py``)."""
    shape = market.postcode_shape
    tail = shape[1:] if shape.startswith("*") else shape[len(prefix) :]
    chars = (str(rng.randrange(10)) if c == "#" else rng.choice(GB_INWARD_LETTERS) if c == "@" else c for c in tail)
    return prefix + "".join(chars)


def _street_address(market: Market, fake: Faker) -> str:
    if market.country == "JP":  # Faker's ja_JP street_address is an English pattern ("763 佐々木 Street")
        return f"{fake.town()}{fake.chome()}{fake.ban()}{fake.gou()}"
    return str(fake.street_address()).replace("\n", ", ")  # en_GB's may be two lines ("Flat 3\nX Road")


def _people(market: Market, fake: Faker, rng: random.Random, variants: tuple[_Variant, ...]) -> list[_Person]:
    banks = _fill(tuple(_j(b) for b in market.banks), 4)
    services = _fill(tuple(_j(s) for s in market.delivery_services), 4)
    people: list[_Person] = []
    for _ in range(market.people):
        male = rng.random() < 0.5
        first = fake.first_name_male() if male else fake.first_name_female()
        last = fake.last_name_male() if male else fake.last_name_female()
        name = f"{last} {first}" if market.family_name_first else f"{first} {last}"
        slug_first, slug_last = _ascii_slug(first), _ascii_slug(last)
        if slug_first and slug_last:
            local = f"{slug_first}.{slug_last}{rng.randrange(100) if rng.random() < 0.5 else ''}"
        else:
            local = fake.user_name()
        email = f"{local}@{fake.free_email_domain()}"
        phone = market.phone_prefix + "".join(str(rng.randrange(10)) for _ in range(market.phone_digits))
        city = rng.choice(market.cities)
        delivery = {
            "name": name,
            "phone": phone,
            "zip": postcode(market, rng.choice(city.postcodes), rng),
            "city": city.name,
            "address": _street_address(market, fake),
            "region": city.region,
            "email": email,
        }
        people.append(
            _Person(
                delivery=json.dumps(delivery, ensure_ascii=False, separators=(",", ":")),
                customer_id=_j(local.replace(".", "_")[:64]),
                locale=_j(market.locale),
                currency=_j(market.currency),
                banks=banks,
                services=services,
                variants=variants,
                delivery_costs=market.delivery_costs,
                custom_fee_step=market.custom_fee_step,
            )
        )
    return people


def _variants(market: Market, fake: Faker, rng: random.Random, nm_ids: list[int]) -> tuple[_Variant, ...]:
    """The market's products in its language and currency, priced within their category's range."""
    brands = [f"{fake.last_name()}{rng.choice(market.brand_suffixes)}" for _ in range(24)]
    variants: list[_Variant] = []
    for nm_id in nm_ids:
        category = rng.choice(market.categories)
        low, high = market.price_range(category)
        price = rng.randint(low, high) // market.price_unit * market.price_unit
        if rng.random() < 0.6:  # a shop price: $12.99, 1 299 ₽, ¥1,990
            charm = price // market.charm_step * market.charm_step - market.charm_off
            price = charm if charm >= low else price
        # The convention of markets.py: rounded down to a whole minor unit.
        totals = tuple(price * (100 - sale) // 100 for sale in _SALES)
        tail = f'"name":{_j(rng.choice(category.products))},"nm_id":{nm_id},"brand":{_j(rng.choice(brands))}'
        sizes = category.sizes
        for slot in range(8):
            size_ix = slot % len(sizes)
            chrt_id = 1_000_000_000 + nm_id * 10 + size_ix
            head = f'"chrt_id":{chrt_id},"price":{price},"size":{_j(sizes[size_ix])},{tail}'
            variants.append(_Variant(head=head, totals=totals))
    return tuple(variants)


_PROCESS_POOL_SEED: Final = int.from_bytes(os.urandom(4), "big")


def _os_random_40() -> Callable[[], int]:
    """40-bit numbers from the OS's randomness, read 32 KiB at a time: a draw costs what a Mersenne Twister
    draw does (one ``os.urandom`` per draw would cost 15 times as much)."""

    def draws() -> Iterator[int]:
        while True:
            yield from map((24).__rrshift__, memoryview(os.urandom(8 * 4096)).cast("Q"))

    return draws().__next__


def _timestamp_formatter() -> Callable[[int], str]:
    days: dict[int, str] = {}

    def fmt(ts: int) -> str:
        day, rest = divmod(ts, 86_400)
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86_400))
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}Z"

    return fmt


def iter_orders(
    count: int,
    seed: int | None = None,
    invalid_ratio: float = 0.0,
    *,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(order_uid, JSON bytes)``; the same seed (and arguments) gives the same sequence.

    With ``invalid_ratio`` > 0 about that share is replaced by orders the ingest must reject (classes in
    :data:`INVALID_CLASSES`, in rotation); the valid ones are the same as with a ratio of 0.
    """
    return ((uid, value) for uid, value, _invalid in iter_flagged_orders(count, seed, invalid_ratio, max_items))


def iter_flagged_orders(
    count: int, seed: int | None, invalid_ratio: float, max_items: int, *, anchor: int | None = None
) -> Iterator[tuple[str, bytes, bool]]:
    """The generator proper: ``(order_uid, JSON bytes, is_invalid)``; the orders are dated up to ``anchor``
    (epoch seconds; by default a fixed moment for a seeded run, now for an unseeded one).

    The hot loop, and the one function longer than 60 lines on purpose: one order per iteration from local
    names and bit fields of a few random draws (a call or an attribute lookup per field would halve the rate).
    """
    people = _pools(_PROCESS_POOL_SEED if seed is None else seed)
    rng = random.Random(seed)
    # A separate stream decides which orders are invalid, so the valid ones do not depend on the ratio.
    chooser = random.Random(None if seed is None else seed ^ 0x5EED_BAD)
    if anchor is None:
        anchor = _SEEDED_ANCHOR if seed is not None else int(time.time())
    getrandbits, ts_fmt = rng.getrandbits, _timestamp_formatter()
    # The uid is all that stands between a stranger and an order: a few hundred Mersenne Twister outputs
    # give away its state, and with it every uid to come. Unseeded, uids come from the OS's randomness; a
    # seeded run draws them from its own stream, so that the same seed still gives the same orders.
    next_uid_bits = partial(getrandbits, 40) if seed is not None else _os_random_40()
    # order_uid = 40 random bits + a bijective scramble of the sequence number: 20 hex digits that look
    # random and are unique within a call by construction (no set of a million strings to check against).
    mul1, add1, mul2 = next_uid_bits() | 1, next_uid_bits(), next_uid_bits() | 1
    mask = (1 << 40) - 1
    invalid_n = 0
    providers, entries, sales, statuses = _PROVIDERS, _ENTRIES, _SALES, _ITEM_STATUSES
    window, delay = _WINDOW_S, _PAYMENT_DELAY_S
    for i in range(count):
        x = (i * mul1 + add1) & mask
        x ^= x >> 20
        x = (x * mul2) & mask
        x ^= x >> 17
        uid = f"{next_uid_bits():010x}{x:010x}"
        track = f"WBIL{getrandbits(48):012X}"
        r = getrandbits(96)
        person = people[r & 511]
        r >>= 9
        created = anchor - (r & 0x1FFFFFF) % window
        r >>= 25
        paid = created + (r & 1023) % delay
        r >>= 10
        delivery_cost = person.delivery_costs[r & 7]
        provider = providers[(r >> 3) & 3]
        bank = person.banks[(r >> 5) & 3]
        service = person.services[(r >> 7) & 3]
        entry = entries[(r >> 9) & 7]
        n_items = (r >> 12) % max_items + 1
        items = []
        goods_total = 0
        variants = person.variants
        for _i in range(n_items):
            q = getrandbits(104)
            variant = variants[q & 2047]
            sale_ix = (q >> 13) & 15
            total = variant.totals[sale_ix]
            goods_total += total
            items.append(
                f'{{{variant.head},"track_number":"{track}","rid":"{q >> 20:021x}","sale":{sales[sale_ix]},'
                f'"total_price":{total},"status":{statuses[(q >> 17) & 7]}}}'
            )
        m = getrandbits(48)
        custom_fee = 0 if m & 7 else ((m >> 3) & 15) * person.custom_fee_step
        request_id = '""' if m & 0x180 else f'"{m:012x}"'
        value = (
            f'{{"order_uid":"{uid}","track_number":"{track}","entry":"{entry}",'
            f'"delivery":{person.delivery},'
            f'"payment":{{"transaction":"{uid}","request_id":{request_id},"currency":{person.currency},'
            f'"provider":"{provider}","amount":{goods_total + delivery_cost + custom_fee},'
            f'"payment_dt":{paid},"bank":{bank},"delivery_cost":{delivery_cost},'
            f'"goods_total":{goods_total},"custom_fee":{custom_fee}}},'
            f'"items":[{",".join(items)}],"locale":{person.locale},"internal_signature":"",'
            f'"customer_id":{person.customer_id},"delivery_service":{service},'
            f'"shardkey":"{((m >> 9) & 1023) % 10}","sm_id":{((m >> 19) & 1023) % 100},'
            f'"date_created":"{ts_fmt(created)}","oof_shard":"{((m >> 29) & 1) + 1}"}}'
        ).encode()
        if invalid_ratio and chooser.random() < invalid_ratio:
            yield uid, _make_invalid(INVALID_CLASSES[invalid_n % len(INVALID_CLASSES)], value), True
            invalid_n += 1
        else:
            yield uid, value, False


def _make_invalid(kind: str, valid: bytes) -> bytes:
    """Turn a valid order into one of the invalid classes (slow path: only for the invalid share)."""
    if kind == "not_json":
        return valid[: len(valid) // 2]
    order: dict[str, Any] = json.loads(valid)
    if kind == "wrong_type":
        order["payment"]["amount"] = str(order["payment"]["amount"])
    elif kind == "missing_field":
        del order["payment"]
    elif kind == "nul_in_text":
        order["delivery"]["name"] += "\x00"
    elif kind == "oversized_field":
        order["delivery"]["address"] = "A" * 10_000
    elif kind == "bad_email":
        order["delivery"]["email"] = "not-an-email"
    elif kind == "bad_phone":
        order["delivery"]["phone"] = "call me maybe"
    elif kind == "bad_currency":
        order["payment"]["currency"] = "dollars"
    elif kind == "bad_timestamp":
        order["date_created"] = "26/11/2021 06:22"
    elif kind == "empty_items":
        order["items"] = []
    elif kind == "unknown_field":
        order["discount_code"] = "FREE"
    else:  # pragma: no cover - INVALID_CLASSES and this function change together
        raise ValueError(f"unknown invalid class {kind!r}")
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()
