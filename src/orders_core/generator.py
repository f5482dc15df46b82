"""Test-order generator: realistic, internally consistent orders (and chosen invalid ones) onto Kafka.

Speed: Faker is only used to fill small pools (people, products) once per seed; the hot path draws from
those pools with a seeded ``random.Random`` and writes the JSON with an f-string from pre-encoded
fragments. Every string that does not come from the RNG as hex/digits is JSON-encoded once, in the pool.
The unit tests check every generated order against :func:`orders_core.model.parse_order`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from faker import Faker
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orders_core.config import Settings, get_settings

__all__ = [
    "INVALID_CLASSES",
    "GenerateRequest",
    "ProduceError",
    "ProduceResult",
    "iter_orders",
    "main",
    "make_orders",
    "produce_orders",
]

DEFAULT_MAX_ITEMS: Final = 5
# Seeded runs are anchored to a fixed moment so that the same seed gives the same bytes on any day.
_SEEDED_ANCHOR: Final = 1_735_689_600  # 2025-01-01T00:00:00Z
_WINDOW_S: Final = 180 * 86_400  # date_created lies within 180 days before the anchor
_PAYMENT_DELAY_S: Final = 900  # payment_dt is 0..15 minutes after date_created
# How long librdkafka tries to deliver a message before reporting it failed (tests lower it).
MESSAGE_TIMEOUT_MS = 30_000

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
    rng = random.Random(seed)
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
    return _Pools(people=tuple(people), variants=tuple(variants))


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


def _check_args(count: int, invalid_ratio: float, max_items: int) -> None:
    if count < 0:
        raise ValueError("count must be >= 0")
    if not 0.0 <= invalid_ratio <= 1.0:
        raise ValueError("invalid_ratio must be between 0 and 1")
    if not 1 <= max_items <= 1000:
        raise ValueError("max_items must be between 1 and 1000")


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
    _check_args(count, invalid_ratio, max_items)  # now, not at the first next()
    return ((uid, value) for uid, value, _invalid in _orders(count, seed, invalid_ratio, max_items))


def _orders(count: int, seed: int | None, invalid_ratio: float, max_items: int) -> Iterator[tuple[str, bytes, bool]]:
    """The generator proper: ``(order_uid, JSON bytes, is_invalid)``."""
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


def make_orders(
    count: int,
    seed: int | None = None,
    invalid_ratio: float = 0.0,
    *,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> list[tuple[str, bytes]]:
    """``count`` orders as ``(order_uid, JSON bytes)``; see :func:`iter_orders`."""
    return list(iter_orders(count, seed, invalid_ratio, max_items=max_items))


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


# --------------------------------------------------------------------------------------------- request


class GenerateRequest(BaseModel):
    """What a caller may ask for (HTTP body, scheduler input, CLI arguments)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    count: int = Field(10, ge=1, description="how many orders (at most GENERATE_MAX_COUNT)")
    seed: int | None = Field(None, description="same seed, same orders")
    invalid_ratio: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False, description="share of invalid ones")

    @field_validator("count")
    @classmethod
    def _count_bound(cls, value: int) -> int:
        limit = get_settings().generate_max_count
        if value > limit:
            raise ValueError(f"count must be at most {limit} (GENERATE_MAX_COUNT)")
        return value


def describe_request_error(error: ValidationError) -> str:
    """One readable line for a refused request (no echo of the input)."""
    parts = []
    for e in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in e["loc"])
        parts.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------- Kafka


class ProduceError(RuntimeError):
    """Some orders were not acknowledged by Kafka; ``unavailable`` when the broker could not be reached."""

    def __init__(self, message: str, *, produced: int, failed: int, undelivered: int, unavailable: bool) -> None:
        super().__init__(message)
        self.produced = produced
        self.failed = failed
        self.undelivered = undelivered
        self.unavailable = unavailable


@dataclass
class ProduceResult:
    produced: int
    failed: int
    invalid: int
    elapsed_s: float
    sample_uids: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.produced / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_response(self) -> dict[str, Any]:
        """The JSON answer of the HTTP function and the scheduler handler."""
        return {
            "produced": self.produced,
            "invalid": self.invalid,
            "order_uids": self.sample_uids,
            "elapsed_ms": round(self.elapsed_s * 1000, 1),
        }


_UNAVAILABLE_CODES: Final = frozenset(
    {"_MSG_TIMED_OUT", "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE", "REQUEST_TIMED_OUT"}
)


class _Deliveries:
    """Counts every delivery report of one ``produce_orders`` call (callbacks run on any polling thread)."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.unavailable = 0
        self.first_error: str | None = None
        self._lock = threading.Lock()

    def __call__(self, err: Any, _msg: Any) -> None:
        with self._lock:
            if err is None:
                self.ok += 1
                return
            self.failed += 1
            if err.name() in _UNAVAILABLE_CODES:
                self.unavailable += 1
            if self.first_error is None:
                self.first_error = f"{err.name()}: {err.str()}"


_producers: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
_producers_lock = threading.Lock()


_reported_errors: set[str] = set()


def _on_client_error(err: Any) -> None:
    if err.fatal():  # an idempotent producer that hit a fatal error is unusable: build a new one next time
        with _producers_lock:
            _producers.clear()
    if err.fatal() or err.name() not in _reported_errors:  # librdkafka repeats these at every reconnect
        _reported_errors.add(err.name())
        print(f"orders-generate: kafka: {err.name()}: {err.str()}", file=sys.stderr)


def producer_config(settings: Settings, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "client.id": "orders-generate",
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "lz4",
        "linger.ms": 10,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "message.timeout.ms": MESSAGE_TIMEOUT_MS,
    }
    config.update(overrides or {})
    return config


def get_producer(settings: Settings, overrides: Mapping[str, Any] | None = None) -> Any:
    """The process-wide producer for this configuration (created on first use, then reused)."""
    from confluent_kafka import Producer

    config = producer_config(settings, overrides)
    key = (settings.kafka_bootstrap_servers, tuple(sorted(config.items())))
    with _producers_lock:
        producer = _producers.get(key)
        if producer is None:
            producer = _producers[key] = Producer({**config, "error_cb": _on_client_error})
        return producer


def close_producers() -> None:
    """Forget every cached producer (each closes when collected), e.g. before its broker goes away."""
    with _producers_lock:
        _producers.clear()


def _forget_producer(producer: Any) -> None:
    with _producers_lock:
        for key, cached in list(_producers.items()):
            if cached is producer:
                del _producers[key]


def produce_orders(
    count: int,
    seed: int | None = None,
    invalid_ratio: float = 0.0,
    settings: Settings | None = None,
    progress: bool = False,
    *,
    max_items: int = DEFAULT_MAX_ITEMS,
    producer_overrides: Mapping[str, Any] | None = None,
    flush_timeout_s: float | None = None,
) -> ProduceResult:
    """Generate ``count`` orders onto ``settings.kafka_topic`` (key = order_uid); raise if any is not acked.

    Returns only when every message has a delivery report; raises :class:`ProduceError` when a report
    was an error or messages were still undelivered when the flush timed out.
    """
    _check_args(count, invalid_ratio, max_items)
    settings = settings or get_settings()
    producer = get_producer(settings, producer_overrides)
    topic = settings.kafka_topic
    timeout_ms = int(producer_config(settings, producer_overrides)["message.timeout.ms"])
    flush_timeout = flush_timeout_s if flush_timeout_s is not None else timeout_ms / 1000 + 10
    reports = _Deliveries()
    sample: list[str] = []
    invalid = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=count, unit="order", unit_scale=True, desc="orders", file=sys.stderr)
    started = time.perf_counter()
    produce, poll = producer.produce, producer.poll
    sent = 0
    try:
        for uid, value, is_invalid in _orders(count, seed, invalid_ratio, max_items):
            try:
                produce(topic, value, uid, on_delivery=reports)
            except BufferError:
                while True:  # the local queue is full: serve delivery reports until there is room
                    poll(0.05)
                    try:
                        produce(topic, value, uid, on_delivery=reports)
                        break
                    except BufferError:
                        continue
            sent += 1
            if is_invalid:
                invalid += 1
            if len(sample) < 10:
                sample.append(uid)
            if not sent & 1023:
                poll(0)
                if bar is not None:
                    bar.update(1024)
        producer.flush(flush_timeout)  # serves the remaining delivery reports
        if bar is not None:
            bar.update(sent - bar.n)
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - started
    # Our own count, not flush()'s: another thread's orders may share this producer's queue.
    undelivered = sent - reports.ok - reports.failed
    if reports.failed or undelivered:
        _forget_producer(producer)  # start afresh next time (e.g. the broker was down)
        raise ProduceError(
            f"{reports.failed} of {sent} orders failed and {undelivered} were still undelivered after the "
            f"flush to {topic!r} at {settings.kafka_bootstrap_servers}"
            + (f"; first error {reports.first_error}" if reports.first_error else ""),
            produced=reports.ok,
            failed=reports.failed,
            undelivered=undelivered,
            unavailable=reports.unavailable == reports.failed,
        )
    return ProduceResult(produced=reports.ok, failed=0, invalid=invalid, elapsed_s=elapsed, sample_uids=sample)


# --------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``orders-generate N [--seed S] [--invalid-ratio R] [--no-progress]``: produce N orders to Kafka."""
    parser = argparse.ArgumentParser(prog="orders-generate", description="Produce test orders to Kafka.")
    parser.add_argument("count", type=int, help="how many orders")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same orders")
    parser.add_argument("--invalid-ratio", type=float, default=0.0, help="share of invalid orders, 0..1")
    parser.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS, help="items per order, 1..N")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        request = GenerateRequest(count=args.count, seed=args.seed, invalid_ratio=args.invalid_ratio)
        _check_args(request.count, request.invalid_ratio, args.max_items)
    except (ValidationError, ValueError) as exc:
        message = describe_request_error(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"orders-generate: {message}", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        result = produce_orders(
            request.count,
            request.seed,
            request.invalid_ratio,
            settings,
            progress=not args.no_progress and sys.stderr.isatty(),
            max_items=args.max_items,
        )
    except ProduceError as exc:
        print(f"orders-generate: FAILED: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bad configuration, e.g. an unparsable bootstrap address
        print(f"orders-generate: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(
        f"produced {result.produced} orders ({result.invalid} invalid) to {settings.kafka_topic!r} at "
        f"{settings.kafka_bootstrap_servers} in {result.elapsed_s:.2f} s ({result.rate:,.0f}/s); "
        f"first: {', '.join(result.sample_uids[:3])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
