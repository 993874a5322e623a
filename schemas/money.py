"""Money in integer minor units: the one conversion every producer uses (POS APIs, file exports, CDC).

Rounding, stated once: an amount with more decimals than its currency's minor unit is rounded **half up**,
i.e. half away from zero (``0.005 EUR`` -> 1 cent, ``-4.165 EUR`` -> -417), as tills, receipts and VAT rules
round. The minor-unit exponents are ISO 4217's (:data:`schemas.models.MINOR_DIGITS`: JPY 0, EUR 2, KWD 3).
Floats are read through their shortest decimal repr (``42.6087`` is 42.6087, not its binary neighbour).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from schemas.models import minor_digits
from tillflow.errors import ContractError

ROUNDING = ROUND_HALF_UP
_PLAIN = re.compile(r"(-?)(\d+)(?:\.(\d*))?")


class MoneyError(ContractError):
    """A value that is not an amount; the message names it (``what``) and the value."""


def minor_units(value: Any, currency: str, what: str = "amount", *, already_minor: bool = False) -> int:
    """A decimal amount (string, int or float, as vendors and databases send them) in minor units of
    ``currency``, rounded half up. ``already_minor``: the value is minor units already (refused if not whole)."""
    if value is None or isinstance(value, bool):
        raise MoneyError(f"{what} is missing" if value is None else f"{what} {value!r} is not a number")
    if already_minor:
        try:
            amount = Decimal(value if isinstance(value, str) else str(value))
        except InvalidOperation:
            raise MoneyError(f"{what} {value!r} is not a number") from None
        if not amount.is_finite() or amount != amount.to_integral_value():
            raise MoneyError(f"{what} {value!r} should be integer minor units")
        return int(amount)
    exp = minor_digits(currency)
    if isinstance(value, int):
        return value * 10**exp
    text = value.strip() if isinstance(value, str) else str(value)
    plain = _PLAIN.fullmatch(text)
    if plain:  # the common case, in integers: as ROUND_HALF_UP below, without Decimal's cost
        sign, whole, frac = plain.group(1), plain.group(2), plain.group(3) or ""
        units = int(whole + frac[:exp].ljust(exp, "0"))
        if len(frac) > exp and frac[exp] >= "5":
            units += 1
        return -units if sign else units
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise MoneyError(f"{what} {value!r} is not a number") from None
    if not amount.is_finite():
        raise MoneyError(f"{what} {value!r} is not a finite number")
    return int(amount.scaleb(exp).quantize(Decimal(1), rounding=ROUNDING))
