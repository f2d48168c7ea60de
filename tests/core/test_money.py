"""Money: exact minor units, currencies' own decimals, display through babel, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.core.errors import Invalid
from siyu.core.money import (
    CURRENCIES,
    Money,
    format_money,
    minor_units,
    parse_decimal_to_minor,
    to_decimal,
)

currencies = st.sampled_from(sorted(CURRENCIES))
amounts = st.integers(min_value=-(10**15), max_value=10**15)


def test_minor_units_follow_the_currency():
    assert (minor_units("CNY"), minor_units("JPY"), minor_units("KWD")) == (2, 0, 3)
    with pytest.raises(Invalid):
        minor_units("XXX1")


def test_parsing_is_exact_and_refuses_extra_decimals():
    assert parse_decimal_to_minor("12.34", "CNY") == 1234
    assert parse_decimal_to_minor("12.3", "CNY") == 1230
    assert parse_decimal_to_minor("0.1", "CNY") + parse_decimal_to_minor("0.2", "CNY") == 30
    assert parse_decimal_to_minor("1500", "JPY") == 1500
    assert parse_decimal_to_minor("-1.005", "KWD") == -1005
    assert parse_decimal_to_minor("12.340", "CNY") == 1234
    for bad, currency in [
        ("12.345", "CNY"),
        ("1.5", "JPY"),
        ("1e3", "CNY"),
        ("NaN", "CNY"),
        ("", "CNY"),
        ("12,34", "CNY"),
    ]:
        with pytest.raises(Invalid) as refused:
            parse_decimal_to_minor(bad, currency)
        assert refused.value.field == "amount"


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(Invalid):
        Money(12.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(Invalid):
        Money(True, "CNY")
    with pytest.raises(Invalid):
        Money(1, "CNY") + Money(1, "EUR")
    assert Money(1, "CNY") + Money(2, "CNY") == Money(3, "CNY")


def test_display_follows_the_locale():
    assert format_money(1234, "CNY", "zh_Hans") == "¥12.34"
    assert format_money(123456, "EUR", "es") == "1.234,56\xa0€"
    assert format_money(1500, "JPY", "en") == "¥1,500"
    assert Money.parse("9.99", "USD").format("en") == "$9.99"


@given(amounts, currencies)
def test_round_trip_through_decimal_text(amount, currency):
    text = str(to_decimal(amount, currency))
    assert parse_decimal_to_minor(text, currency) == amount
    assert Money.parse(text, currency) == Money(amount, currency)


@given(amounts, currencies)
def test_decimal_value_is_exact(amount, currency):
    value = to_decimal(amount, currency)
    assert isinstance(value, Decimal)
    assert value * (Decimal(10) ** minor_units(currency)) == amount
