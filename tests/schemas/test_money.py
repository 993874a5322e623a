"""schemas/money.py: the one conversion to minor units, its rounding (half up, away from zero) and its errors."""

from __future__ import annotations

import random
from decimal import ROUND_HALF_UP, Decimal

import pytest

from producers.cdc import normalize
from producers.pos import common
from schemas.models import minor_digits
from schemas.money import MoneyError, minor_units


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [("0.005", "EUR", 1), ("-0.005", "EUR", -1), ("0.0049", "EUR", 0), ("2.675", "USD", 268), ("0.5", "JPY", 1),
     ("2.5", "JPY", 3), ("1.2345", "KWD", 1235), ("-4.165", "EUR", -417), (42.6087, "NZD", 4261),
     ("1E+2", "EUR", 10000), (" 3.10 ", "EUR", 310), (7, "JPY", 7), (7, "BHD", 7000)],
)  # fmt: skip
def test_half_up_away_from_zero(value: object, currency: str, expected: int) -> None:
    assert minor_units(value, currency) == expected


def test_half_up_not_half_even() -> None:
    """The two producers used to differ here (CDC rounded 0.005 to 0, the POS pollers to 1): one rule now."""
    assert minor_units("0.125", "EUR") == 13 and minor_units("0.135", "EUR") == 14
    assert normalize.minor_units("0.125", "EUR") == common.minor_units("0.125", "EUR") == 13


def test_errors_name_the_field_and_each_producer_keeps_its_error_type() -> None:
    for bad in (None, "", "12,50", "NaN", "inf", True):
        with pytest.raises(MoneyError, match="total_price"):
            minor_units(bad, "EUR", "total_price")
    with pytest.raises(common.MappingError, match="total_price"):
        common.minor_units("x", "EUR", "total_price")
    with pytest.raises(normalize.MappingError, match="integer minor units"):
        normalize.minor_units("12.5", "EUR", already_minor=True)
    assert minor_units("1250", "EUR", already_minor=True) == 1250


def test_fast_path_agrees_with_decimal() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        currency = rng.choice(["EUR", "JPY", "KWD", "USD"])
        value = f"{rng.choice(['', '-'])}{rng.randint(0, 10**6)}.{rng.randint(0, 10**7):07d}"
        expected = int(Decimal(value).scaleb(minor_digits(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert minor_units(value, currency) == expected, (value, currency)
