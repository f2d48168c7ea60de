"""Money: an integer amount of minor units (fen, cents) and an ISO 4217 currency; never a float."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

from siyu.core.errors import Invalid

CURRENCIES = frozenset(list_currencies())
_DECIMAL = re.compile(r"^[+-]?\d+(\.\d+)?$")


def is_currency(code: object) -> bool:
    """True for an ISO 4217 code babel knows (upper case, three letters)."""
    return isinstance(code, str) and code in CURRENCIES


def check_currency(code: str, *, field: str = "currency") -> str:
    """The code itself, or a 422 naming `field`."""
    if not is_currency(code):
        raise Invalid(f"unknown currency {code!r} (use an ISO 4217 code such as CNY)", field=field)
    return code


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """How many decimals the currency's minor unit has (CNY 2, JPY 0, KWD 3)."""
    return int(get_currency_precision(check_currency(currency)))


def to_decimal(amount: int, currency: str) -> Decimal:
    """An amount of minor units as an exact Decimal of major units (1234 CNY -> 12.34)."""
    return Decimal(amount).scaleb(-minor_units(currency))


def parse_decimal_to_minor(text: str, currency: str, *, field: str = "amount") -> int:
    """Exact minor units of a decimal string ("12.34" CNY -> 1234); no float, no extra decimals."""
    units = minor_units(currency)
    if not isinstance(text, str) or not _DECIMAL.match(text.strip()):
        raise Invalid(f"{text!r} is not a decimal amount such as 12.34", field=field)
    value = Decimal(text.strip()).scaleb(units)
    if value != value.to_integral_value():
        raise Invalid(f"{currency} amounts have at most {units} decimals, got {text!r}", field=field)
    return int(value)


def format_money(amount: int, currency: str, locale: str) -> str:
    """The amount for display in a locale ("¥12.34", "12,34 €")."""
    return str(format_currency(to_decimal(amount, currency), currency, locale=locale))


@dataclass(frozen=True)
class Money:
    """An amount of minor units in one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise Invalid("money amounts are whole minor units (int), never floats", field="amount")
        check_currency(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Money from a decimal string of major units."""
        return cls(parse_decimal_to_minor(text, currency), currency)

    def to_decimal(self) -> Decimal:
        """Major units as an exact Decimal."""
        return to_decimal(self.amount, self.currency)

    def format(self, locale: str) -> str:
        """For display in a locale."""
        return format_money(self.amount, self.currency, locale)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise Invalid(f"can't add {other.currency} to {self.currency}", field="currency")
        return Money(self.amount + other.amount, self.currency)
