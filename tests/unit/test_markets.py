"""Orders that hold together, per country: whatever the seed, an order's city, region and postcode belong to one
place of its market, its prices lie in its market's ranges, and its amounts add up in the currency's minor unit."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orders_core.domain.model import parse_order
from orders_core.generator.builder import iter_orders
from orders_core.generator.markets import GB_INWARD_LETTERS, MARKETS, MINOR_UNITS, Category, City, Market

# Each country's own postcode format (its postal service's), independent of the tables' prefixes.
NATIONAL_POSTCODE = {
    "US": r"\d{5}",
    "GB": r"[A-Z]{1,2}\d[A-Z\d]? \d[ABD-HJLNP-UW-Z]{2}",
    "DE": r"\d{5}",
    "FR": r"\d{5}",
    "PL": r"\d{2}-\d{3}",
    "RU": r"\d{6}",
    "JP": r"\d{3}-\d{4}",
}
MARKET_OF_LOCALE = {market.locale: market for market in MARKETS}


def postcode_pattern(market: Market, prefix: str) -> re.Pattern[str]:
    """The postcodes that begin with ``prefix`` in the market's shape (the rules of markets.py's docstring)."""
    shape = market.postcode_shape
    tail = shape[1:] if shape.startswith("*") else shape[len(prefix) :]
    classes = {"#": "[0-9]", "@": f"[{GB_INWARD_LETTERS}]"}
    return re.compile(re.escape(prefix) + "".join(classes.get(c, re.escape(c)) for c in tail))


def city_of(market: Market, order: Any) -> City:
    [city] = [city for city in market.cities if city.name == order.delivery.city]
    return city


def category_of(market: Market, product: str) -> Category:
    [category] = [category for category in market.categories if product in category.products]
    return category


def check_order(order: Any) -> Market:
    """Every relation an order of its market must keep; returns the market."""
    market = MARKET_OF_LOCALE[order.locale]
    assert order.payment.currency == market.currency
    city = city_of(market, order)
    assert order.delivery.region == city.region, (city, order.delivery)
    assert any(postcode_pattern(market, prefix).fullmatch(order.delivery.zip) for prefix in city.postcodes), (
        city,
        order.delivery.zip,
    )
    assert re.fullmatch(NATIONAL_POSTCODE[market.country], order.delivery.zip), order.delivery.zip
    assert order.delivery.phone.startswith(market.phone_prefix)
    assert len(order.delivery.phone) == len(market.phone_prefix) + market.phone_digits
    for item in order.items:
        category = category_of(market, item.name)
        low, high = market.price_range(category)
        assert low <= item.price <= high, (market.country, category.name, item.price)
        assert item.price % market.price_unit == 0
        assert item.size in category.sizes
        assert item.total_price == item.price * (100 - item.sale) // 100
    payment = order.payment
    assert payment.goods_total == sum(item.total_price for item in order.items)
    assert payment.amount == payment.goods_total + payment.delivery_cost + payment.custom_fee
    assert payment.delivery_cost in market.delivery_costs
    assert payment.custom_fee % market.custom_fee_step == 0
    return market


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**63 - 1))
def test_every_order_of_any_seed_holds_together_in_its_market(seed: int) -> None:
    """GIVEN any seed WHEN 300 orders are built THEN each keeps its market's relations, and every market has some."""
    markets = Counter(
        check_order(parse_order(raw).content).country for _, raw in iter_orders(300, seed=seed, max_items=3)
    )
    assert set(markets) == {market.country for market in MARKETS}


def test_unseeded_orders_hold_together_too() -> None:
    for _, raw in iter_orders(300):
        check_order(parse_order(raw).content)


@pytest.mark.parametrize("market", MARKETS, ids=lambda market: market.country)
def test_a_postcode_names_one_city_of_its_market(market: Market) -> None:
    """No city's postcode prefix begins another city's, so a postcode can only be of the city it is given with."""
    owners = [(prefix, city.name) for city in market.cities for prefix in city.postcodes]
    whole_code = market.postcode_shape.startswith("*")  # the prefix is all of the outward code
    for prefix, city in owners:
        for other, other_city in owners:
            if city != other_city:
                assert prefix != other if whole_code else not other.startswith(prefix), (prefix, other)


@pytest.mark.parametrize("market", MARKETS, ids=lambda market: market.country)
def test_each_market_table_is_whole(market: Market) -> None:
    assert market.locale.replace("-", "_") == market.faker_locale
    assert market.locale.endswith("-" + market.country)
    assert market.currency in MINOR_UNITS
    assert len(market.delivery_costs) == 8 and len(market.cities) >= 10
    products = [product for category in market.categories for product in category.products]
    assert len(products) == len(set(products)), "a product name tells its category"
    assert len({city.name for city in market.cities}) == len(market.cities)
    for category in market.categories:
        low, high = market.price_range(category)
        assert 0 < low < high and low % market.price_unit == 0 and 1 <= len(category.sizes) <= 8


def test_amounts_are_minor_units_of_their_currency() -> None:
    """A yen price has no decimals to hide: ¥1,990 is 1990; a dollar price in cents: $12.99 is 1299."""
    prices = {market.currency: [] for market in MARKETS}
    for _, raw in iter_orders(2_000, seed=5):
        order = parse_order(raw).content
        prices[order.payment.currency] += [item.price for item in order.items]
    assert min(prices["JPY"]) >= 500 and max(prices["JPY"]) <= 30_000  # yen, whole
    assert min(prices["USD"]) >= 400 and max(prices["USD"]) <= 25_000  # cents: $4 to $250
    assert all(price % 100 == 0 for price in prices["RUB"])  # whole roubles, in kopecks
    shop_prices = sum(1 for price in prices["USD"] if price % 100 == 99)
    assert shop_prices > len(prices["USD"]) / 3  # most look like $12.99
