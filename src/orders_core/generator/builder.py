"""Test-order builder: realistic, internally consistent orders (and chosen invalid ones), as JSON bytes.

Pure: no Kafka, no settings. :class:`orders_core.generator.producer.GenerateRequest` validates what callers ask for
(count, invalid ratio, items per order); this module trusts its arguments. ``producer.py`` puts the orders
onto Kafka and ``generate_cli.py`` is ``orders-generate``.

Speed: Faker is only used to fill small pools (people, products) once per seed; the hot path draws from
those pools with a seeded ``random.Random`` and writes the JSON with an f-string from pre-encoded
fragments. Every string that does not come from the RNG as hex/digits is JSON-encoded once, in the pool.
The unit tests check every generated order against :func:`orders_core.domain.model.parse_order`.
"""

from __future__ import annotations

import json
import os
import random
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from faker import Faker

DEFAULT_MAX_ITEMS: Final = 5
# Seeded runs are anchored to a fixed moment so that the same seed gives the same bytes on any day.
_SEEDED_ANCHOR: Final = 1_735_689_600  # 2025-01-01T00:00:00Z
_WINDOW_S: Final = 180 * 86_400  # date_created lies within 180 days before the anchor
_PAYMENT_DELAY_S: Final = 900  # payment_dt is 0..15 minutes after date_created

# (order locale, Faker locale, phone prefix, national digits, currency, banks, delivery services, people)
_LOCALES: Final = (
    ("en", "en_US", "+1", 10, "USD", ("chase", "citi", "wellsfargo", "bofa"), ("ups", "fedex", "usps"), 160),
    ("ru", "ru_RU", "+79", 9, "RUB", ("alpha", "sber", "tinkoff", "vtb"), ("cdek", "boxberry", "meest"), 128),
    ("de", "de_DE", "+4915", 9, "EUR", ("deutsche", "commerz", "ing"), ("dhl", "dpd", "hermes"), 96),
    ("fr", "fr_FR", "+336", 8, "EUR", ("bnp", "socgen", "lcl"), ("colissimo", "chronopost", "dpd"), 64),
    ("en", "en_GB", "+447", 9, "GBP", ("barclays", "hsbc", "lloyds"), ("royalmail", "dpd", "evri"), 64),
)
_PEOPLE: Final = 512  # sum of the per-locale counts above; a power of two (masked draws)
_PRODUCTS: Final = 1024  # a power of two
_PRODUCT_KINDS: Final = (
    # (nouns, sizes, price range in minor units)
    (
        ("T-shirt", "Hoodie", "Jeans", "Dress", "Jacket", "Skirt", "Sweater"),
        ("XS", "S", "M", "L", "XL"),
        900,
        12_000,
    ),
    (("Sneakers", "Boots", "Sandals", "Loafers"), ("38", "39", "40", "41", "42", "43", "44"), 2_500, 25_000),
    (("Mascara", "Lipstick", "Face Cream", "Shampoo", "Perfume", "Eyeliner"), ("0",), 150, 6_000),
    (("Backpack", "Wallet", "Phone Case", "Headphones", "Mug", "Notebook", "Desk Lamp"), ("0",), 300, 15_000),
)
_BRAND_SUFFIXES: Final = ("", "", " & Co", " Studio", " Lab", " Wear", " Beauty", " Home")
_SALES: Final = (0, 0, 0, 0, 5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 90)  # 16: masked draws
_ITEM_STATUSES: Final = (202, 202, 202, 202, 200, 201, 203, 300)  # 8
_DELIVERY_COSTS: Final = (0, 0, 300, 500, 700, 1000, 1500, 2000)  # 8
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
class _Person:
    delivery: str  # the whole "delivery" object, JSON
    customer_id: str  # JSON string literal
    locale: str  # JSON string literal
    currency: str  # JSON string literal
    banks: tuple[str, ...]  # 4 JSON string literals
    services: tuple[str, ...]  # 4 JSON string literals


@dataclass(frozen=True, slots=True)
class _Variant:
    """One product in one size (8 slots per product, sizes repeated to fill): what an item line needs."""

    head: str  # '"chrt_id":…,"price":…,"size":…,"name":…,"nm_id":…,"brand":…' JSON members
    totals: tuple[int, ...]  # total_price for each entry of _SALES


@dataclass(frozen=True, slots=True)
class _Pools:
    people: tuple[_Person, ...]
    variants: tuple[_Variant, ...]  # _PRODUCTS * 8


def _fill(values: tuple[str, ...], n: int) -> tuple[str, ...]:
    return tuple(values[i % len(values)] for i in range(n))


@lru_cache(maxsize=8)
def _pools(seed: int) -> _Pools:
    """People and products from a seeded Faker per locale (about 0.1-0.2 s; cached per seed)."""
    rng = random.Random(seed)  # one stream, people first: the same seed gives the same pools
    people = _people(seed, rng)
    return _Pools(people=people, variants=_variants(seed, rng))


def _people(seed: int, rng: random.Random) -> tuple[_Person, ...]:
    people: list[_Person] = []
    for order_locale, faker_locale, phone_prefix, digits, currency, banks, services, n in _LOCALES:
        fake = Faker(faker_locale)
        fake.seed_instance(seed)
        for _ in range(n):
            male = rng.random() < 0.5
            first = fake.first_name_male() if male else fake.first_name_female()
            last = fake.last_name_male() if male else fake.last_name_female()
            name = f"{last} {first}" if order_locale == "ru" else f"{first} {last}"
            slug_first, slug_last = _ascii_slug(first), _ascii_slug(last)
            if slug_first and slug_last:
                local = f"{slug_first}.{slug_last}{rng.randrange(100) if rng.random() < 0.5 else ''}"
            else:
                local = fake.user_name()
            email = f"{local}@{fake.free_email_domain()}"
            phone = phone_prefix + "".join(str(rng.randrange(10)) for _ in range(digits))
            region = fake.administrative_unit() if hasattr(fake, "administrative_unit") else ""
            delivery = {
                "name": name,
                "phone": phone,
                "zip": fake.postcode(),
                "city": fake.city(),
                "address": fake.street_address(),
                "region": region,
                "email": email,
            }
            people.append(
                _Person(
                    delivery=json.dumps(delivery, ensure_ascii=False, separators=(",", ":")),
                    customer_id=_j(local.replace(".", "_")[:64]),
                    locale=_j(order_locale),
                    currency=_j(currency),
                    banks=_fill(tuple(_j(b) for b in banks), 4),
                    services=_fill(tuple(_j(s) for s in services), 4),
                )
            )
    assert len(people) == _PEOPLE
    return tuple(people)


def _variants(seed: int, rng: random.Random) -> tuple[_Variant, ...]:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    brands = [f"{fake.last_name()}{rng.choice(_BRAND_SUFFIXES)}" for _ in range(96)]
    variants: list[_Variant] = []
    for nm_id in rng.sample(range(1_000_000, 99_999_999), _PRODUCTS):
        nouns, sizes, low, high = rng.choice(_PRODUCT_KINDS)
        color = "".join(" " + c if c.isupper() else c for c in fake.color_name()).strip()
        name = f"{color} {rng.choice(nouns)}"
        brand = rng.choice(brands)
        price = rng.randrange(low, high)
        if rng.random() < 0.6:
            price = max(price // 100 * 100 - 1, 1)  # a shop price: 1299
        totals = tuple(price * (100 - sale) // 100 for sale in _SALES)
        tail = f'"name":{_j(name)},"nm_id":{nm_id},"brand":{_j(brand)}'
        for slot in range(8):
            size_ix = slot % len(sizes)
            chrt_id = 1_000_000_000 + nm_id * 10 + size_ix
            head = f'"chrt_id":{chrt_id},"price":{price},"size":{_j(sizes[size_ix])},{tail}'
            variants.append(_Variant(head=head, totals=totals))
    return tuple(variants)


_PROCESS_POOL_SEED: Final = int.from_bytes(os.urandom(4), "big")


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
    count: int, seed: int | None, invalid_ratio: float, max_items: int
) -> Iterator[tuple[str, bytes, bool]]:
    """The generator proper: ``(order_uid, JSON bytes, is_invalid)``.

    The hot loop, and the one function longer than 60 lines on purpose: one order per iteration from local
    names and bit fields of a few random draws (a call or an attribute lookup per field would halve the rate).
    """
    pools = _pools(_PROCESS_POOL_SEED if seed is None else seed)
    rng = random.Random(seed)
    # A separate stream decides which orders are invalid, so the valid ones do not depend on the ratio.
    chooser = random.Random(None if seed is None else seed ^ 0x5EED_BAD)
    anchor = _SEEDED_ANCHOR if seed is not None else int(time.time())
    people, variants = pools.people, pools.variants
    getrandbits, ts_fmt = rng.getrandbits, _timestamp_formatter()
    # order_uid = 40 random bits + a bijective scramble of the sequence number: 20 hex digits that look
    # random and are unique within a call by construction (no set of a million strings to check against).
    mul1, add1, mul2 = getrandbits(40) | 1, getrandbits(40), getrandbits(40) | 1
    mask = (1 << 40) - 1
    invalid_n = 0
    costs, providers, entries, sales, statuses = _DELIVERY_COSTS, _PROVIDERS, _ENTRIES, _SALES, _ITEM_STATUSES
    window, delay = _WINDOW_S, _PAYMENT_DELAY_S
    for i in range(count):
        x = (i * mul1 + add1) & mask
        x ^= x >> 20
        x = (x * mul2) & mask
        x ^= x >> 17
        uid = f"{getrandbits(40):010x}{x:010x}"
        track = f"WBIL{getrandbits(48):012X}"
        r = getrandbits(96)
        person = people[r & 511]
        r >>= 9
        created = anchor - (r & 0x1FFFFFF) % window
        r >>= 25
        paid = created + (r & 1023) % delay
        r >>= 10
        delivery_cost = costs[r & 7]
        provider = providers[(r >> 3) & 3]
        bank = person.banks[(r >> 5) & 3]
        service = person.services[(r >> 7) & 3]
        entry = entries[(r >> 9) & 7]
        n_items = (r >> 12) % max_items + 1
        items = []
        goods_total = 0
        for _i in range(n_items):
            q = getrandbits(104)
            variant = variants[q & 8191]
            sale_ix = (q >> 13) & 15
            total = variant.totals[sale_ix]
            goods_total += total
            items.append(
                f'{{{variant.head},"track_number":"{track}","rid":"{q >> 20:021x}","sale":{sales[sale_ix]},'
                f'"total_price":{total},"status":{statuses[(q >> 17) & 7]}}}'
            )
        m = getrandbits(48)
        custom_fee = 0 if m & 7 else ((m >> 3) & 15) * 50
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
