"""The test-order generator: valid orders pass the contract and add up; invalid ones are refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from devstack import ROOT
from orders_core.config import get_settings
from orders_core.domain.model import ORDER_UID_RE, parse_order
from orders_core.generator import builder
from orders_core.generator.builder import INVALID_CLASSES, iter_orders
from orders_core.generator.markets import MARKETS, MINOR_UNITS
from orders_core.generator.producer import GenerateRequest
from orders_local.generate_cli import main as generate_cli


@pytest.fixture(scope="module")
def orders() -> list[tuple[str, bytes]]:
    return list(iter_orders(2_000, seed=42))


def test_every_order_passes_the_model_and_round_trips(orders: list[tuple[str, bytes]]) -> None:
    for key, raw in orders:
        order = parse_order(raw)
        assert order.order_uid == key
        assert parse_order(order.canonical_json).canonical_json == order.canonical_json
        assert json.loads(order.canonical_json) == json.loads(raw)


def test_orders_are_internally_consistent(orders: list[tuple[str, bytes]]) -> None:
    for _key, raw in orders:
        order = parse_order(raw).content
        assert ORDER_UID_RE.match(order.order_uid) and len(order.order_uid) == 20
        assert 1 <= len(order.items) <= 5
        assert order.payment.transaction == order.order_uid
        for item in order.items:
            assert item.track_number == order.track_number
            assert 0 <= item.sale <= 90
            assert item.total_price == item.price * (100 - item.sale) // 100
        assert order.payment.goods_total == sum(i.total_price for i in order.items)
        assert order.payment.amount == (
            order.payment.goods_total + order.payment.delivery_cost + order.payment.custom_fee
        )
        assert order.payment.currency in MINOR_UNITS
        assert order.date_created.endswith("Z") and len(order.date_created) == 20
        created = datetime.fromisoformat(order.date_created.replace("Z", "+00:00"))
        assert 0 <= order.payment.payment_dt - int(created.timestamp()) < 900


def test_uids_are_unique_and_the_data_varies(orders: list[tuple[str, bytes]]) -> None:
    uids = [key for key, _ in orders]
    assert len(set(uids)) == len(uids)
    parsed = [parse_order(raw).content for _, raw in orders]
    assert len({o.delivery.name for o in parsed}) > 200
    assert len({o.delivery.city for o in parsed}) > 80
    assert len({i.brand for o in parsed for i in o.items}) > 30
    assert {o.payment.currency for o in parsed} == {market.currency for market in MARKETS}
    assert {o.locale for o in parsed} == {market.locale for market in MARKETS}
    assert {len(o.items) for o in parsed} == {1, 2, 3, 4, 5}


def test_max_items_is_configurable() -> None:
    sizes = {len(parse_order(raw).content.items) for _, raw in list(iter_orders(300, seed=1, max_items=12))}
    assert max(sizes) == 12 and min(sizes) == 1
    assert {len(parse_order(raw).content.items) for _, raw in list(iter_orders(50, seed=1, max_items=1))} == {1}


def test_same_seed_same_orders_different_seed_different() -> None:
    assert list(iter_orders(300, seed=7)) == list(iter_orders(300, seed=7))
    other = list(iter_orders(300, seed=8))
    assert {k for k, _ in other}.isdisjoint(k for k, _ in iter_orders(300, seed=7))
    assert list(iter_orders(50, seed=None)) != list(iter_orders(50, seed=None))


def test_unseeded_orders_are_valid_and_recent() -> None:
    now = time.time()
    for _, raw in list(iter_orders(200)):
        created = datetime.fromisoformat(parse_order(raw).content.date_created.replace("Z", "+00:00")).timestamp()
        assert now - 181 * 86_400 < created <= now + 1


def _refused(raw: bytes) -> bool:
    try:
        parse_order(raw)
    except ValidationError:
        return True
    return False


def test_invalid_ratio_one_gives_only_refused_orders_of_every_class() -> None:
    generated = list(iter_orders(3 * len(INVALID_CLASSES), seed=3, invalid_ratio=1.0))
    for key, raw in generated:
        assert ORDER_UID_RE.match(key)
        assert _refused(raw), raw[:200]
    # the classes rotate, so each appears: e.g. a NUL, a non-JSON body and an empty item list
    assert any(b"\\u0000" in raw for _, raw in generated)
    assert any(_not_json(raw) for _, raw in generated)
    assert any(json.loads(raw).get("items") == [] for _, raw in generated if not _not_json(raw))


def _not_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return True
    return False


def test_invalid_ratio_gives_about_that_share_and_keeps_the_valid_ones() -> None:
    mixed = list(iter_orders(2_000, seed=11, invalid_ratio=0.3))
    clean = list(iter_orders(2_000, seed=11))
    refused = sum(_refused(raw) for _, raw in mixed)
    assert 0.25 < refused / 2_000 < 0.35
    assert [k for k, _ in mixed] == [k for k, _ in clean]
    for (_, got), (_, want) in zip(mixed, clean, strict=True):
        assert got == want or _refused(got)


@pytest.fixture
def max_count(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("GENERATE_MAX_COUNT", "500")
    get_settings.cache_clear()
    yield 500
    monkeypatch.delenv("GENERATE_MAX_COUNT")
    get_settings.cache_clear()


def test_generate_request_defaults_and_bounds(max_count: int) -> None:
    settings = get_settings()
    assert GenerateRequest() == GenerateRequest(count=10, seed=None, invalid_ratio=0.0, max_items=5)
    assert GenerateRequest.of_call({"count": max_count, "seed": 1, "invalid_ratio": 1}, settings).count == max_count
    assert GenerateRequest(max_items=1000).max_items == 1000
    assert GenerateRequest.model_validate({"count": max_count + 1}).count == max_count + 1  # orders-generate's
    for bad in (
        {"count": 0},
        {"count": max_count + 1},
        {"count": "10"},
        {"count": True},
        {"count": 1.5},
        {"invalid_ratio": -0.1},
        {"invalid_ratio": 1.01},
        {"seed": "x"},
        {"max_items": 0},
        {"max_items": 1001},
        {"cuont": 5},
        {"occurrence": "yesterday"},
        {"occurrence": 1764860400},
        {"schedule": ""},
    ):
        with pytest.raises(ValidationError):
            GenerateRequest.of_call(bad, settings)


def test_an_occurrence_gives_the_same_orders_however_often_it_runs() -> None:
    minute = {"count": 5, "schedule": "rate(1 minute)", "occurrence": "2026-12-04T15:00:00Z"}
    again = GenerateRequest.model_validate({**minute, "occurrence": "2026-12-04T15:00:00+00:00"})
    seed = GenerateRequest.model_validate(minute).run_seed()
    assert seed is not None and again.run_seed() == seed
    assert GenerateRequest.model_validate({**minute, "occurrence": "2026-12-04T15:01:00Z"}).run_seed() != seed
    assert GenerateRequest.model_validate({**minute, "schedule": "rate(5 minutes)"}).run_seed() != seed
    assert GenerateRequest.model_validate(minute).run_seed(key="secret") not in (seed, None)
    assert GenerateRequest.model_validate({**minute, "seed": 7}).run_seed() == 7  # a seed asked for wins
    assert GenerateRequest.model_validate({"count": 5}).run_seed() is None  # unscheduled: fresh orders


def test_orders_of_an_occurrence_are_dated_up_to_it() -> None:
    occurrence = int(datetime.fromisoformat("2026-12-04T15:00:00+00:00").timestamp())
    for _, raw in iter_flagged_orders_at(occurrence):
        created = datetime.fromisoformat(parse_order(raw).content.date_created.replace("Z", "+00:00")).timestamp()
        assert occurrence - 181 * 86_400 < created <= occurrence


def iter_flagged_orders_at(anchor: int) -> list[tuple[str, bytes]]:
    return [(uid, raw) for uid, raw, _ in builder.iter_flagged_orders(50, 1, 0.0, 5, anchor=anchor)]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["0"], "count"),
        (["5", "--invalid-ratio", "1.5"], "invalid_ratio"),
        (["5", "--max-items", "0"], "max_items"),
    ],
)
def test_cli_refuses_what_the_request_refuses_before_touching_kafka(
    max_count: int, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generate_cli(argv) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- HTTP


@pytest.fixture
def client(max_count: int) -> Any:
    import functions_framework

    app = functions_framework.create_app(
        target="http_entry", source=str(ROOT / "functions" / "generate_orders" / "main.py")
    )
    return app.test_client()


@pytest.mark.parametrize(
    "body",
    [
        {"count": 0},
        {"count": 501},
        {"count": "5"},
        {"invalid_ratio": 2},
        {"seed": 1.5},
        {"unknown": 1},
        [1, 2],
        "not json",
    ],
)
def test_http_bad_request_is_400(client: Any, body: Any) -> None:
    data = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/", data=data, content_type="application/json")
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["error"] == "bad_request"
    assert answer["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_http_other_methods_are_405(client: Any, method: str) -> None:
    response = client.open("/", method=method)
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_unseeded_uids_come_from_the_os_randomness_not_the_mersenne_twister(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the OS's randomness replaced by a known stream (the Mersenne Twister stays seeded by the OS)
    stream = bytes(range(256)) * 128

    def known_urandom(size: int) -> bytes:
        return (stream * (size // len(stream) + 1))[:size]

    monkeypatch.setattr(builder.os, "urandom", known_urandom)
    # WHEN two unseeded runs draw their uids
    first, second = [uid for uid, _ in iter_orders(100)], [uid for uid, _ in iter_orders(100)]
    # THEN their uids are the OS's draws (same stream, same uids), while the rest of each order differs
    assert first == second
    words = memoryview(known_urandom(8 * 4096)).cast("Q")
    assert first[0][:10] == f"{words[3] >> 24:010x}"  # after the three drawn for the sequence scramble
    assert [raw for _, raw in iter_orders(5)] != [raw for _, raw in iter_orders(5)]


def test_a_seeded_run_draws_nothing_from_the_os(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = list(iter_orders(50, seed=99))

    def no_urandom(size: int) -> bytes:
        raise AssertionError("a seeded run must be reproducible")

    monkeypatch.setattr(builder.os, "urandom", no_urandom)
    assert list(iter_orders(50, seed=99)) == expected
