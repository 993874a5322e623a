"""What every vendor mapping shares: the mapping context, money in minor units, tender and error types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas import money
from schemas.models import Payment, PaymentMethod, PosTicket, TicketKind, minor_digits, reversed_amounts
from tillflow.errors import MappingError


def exponent(currency: str) -> int:
    """Digits after the decimal point of ``currency`` (JPY 0, EUR 2, KWD 3)."""
    return minor_digits(currency)


def minor_units(value: Any, currency: str, what: str = "amount") -> int:
    """A decimal amount in minor units (schemas.money: rounded half up), as a MappingError when it is not one."""
    try:
        return money.minor_units(value, currency, what)
    except money.MoneyError as exc:
        raise MappingError(str(exc)) from None


def as_int(value: Any, what: str) -> int:
    """An amount that the vendor already sends in minor units (Square, Clover)."""
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{what} is missing")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise MappingError(f"{what} {value!r} is not an integer amount in minor units")


def parse_time(value: Any, what: str) -> datetime:
    """ISO 8601 with an offset (``Z`` accepted) or epoch milliseconds, as aware UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise MappingError(f"{what} {value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None:
            raise MappingError(f"{what} {value!r} has no UTC offset")
        return parsed.astimezone(UTC)
    raise MappingError(f"{what} is missing")


@dataclass(frozen=True)
class MapContext:
    """Per-source facts the vendor payloads do not carry."""

    source: str
    stores: Mapping[str, str]
    """Vendor location (Square location, Shopify location, Lightspeed outlet, Clover merchant) -> store_id."""
    ingested_at: datetime
    tenant_id: str | None = None
    currency: str | None = None
    """For vendors whose sales carry no currency (Lightspeed X-Series)."""
    categories: Mapping[str, str] = field(default_factory=dict)
    """Vendor product/variation/item id or SKU -> category, for vendors whose lines carry none."""
    payment_types: Mapping[str, str] = field(default_factory=dict)
    """Vendor payment type id or name -> PaymentMethod name, overriding the built-in guesses."""

    def store(self, location: Any, record: str) -> str:
        key = str(location) if location is not None else ""
        try:
            return self.stores[key]
        except KeyError:
            known = ", ".join(sorted(self.stores)) or "none"
            raise MappingError(f"{record}: location {key!r} is not mapped to a store (mapped: {known})") from None

    def category(self, *keys: Any) -> str | None:
        for key in keys:
            if key is not None and str(key) in self.categories:
                return self.categories[str(key)]
        return None

    def payment_override(self, *keys: Any) -> PaymentMethod | None:
        for key in keys:
            if key is not None and str(key) in self.payment_types:
                return PaymentMethod(self.payment_types[str(key)])
        return None


def method_from_name(name: str | None) -> PaymentMethod:
    """Guess a tender type from its display name (Lightspeed, Clover and Shopify name them freely)."""
    text = (name or "").lower()
    if "gift" in text or "voucher" in text:
        return PaymentMethod.GIFT_CARD
    if "cash" in text:
        return PaymentMethod.CASH
    if any(w in text for w in ("apple", "google", "wallet", "mobile", "paypal", "alipay", "wechat")):
        return PaymentMethod.MOBILE
    if any(w in text for w in ("card", "credit", "debit", "eftpos", "visa", "master", "amex", "shopify_payments")):
        return PaymentMethod.CARD
    return PaymentMethod.OTHER


def merge_payments(payments: Iterable[tuple[PaymentMethod, int]]) -> tuple[Payment, ...]:
    """One payment per method, in first-seen order, zero totals dropped."""
    totals: dict[PaymentMethod, int] = {}
    for method, amount in payments:
        totals[method] = totals.get(method, 0) + amount
    return tuple(Payment(method=m, amount=a) for m, a in totals.items() if a)


def build(record: str, **fields: Any) -> PosTicket:
    """Validate a ticket; a validation failure becomes a :class:`MappingError` naming the record."""
    try:
        return PosTicket(**fields)
    except ValueError as exc:
        raise MappingError(f"{record}: {exc}") from None


def void_of(sale: dict[str, Any], what: str) -> PosTicket:
    """The VOID that reverses ``sale`` (same amounts, negative), named ``<sale id>:void``."""
    void = reversed_amounts(sale)
    void.update(ticket_id=f"{sale['ticket_id']}:void", kind=TicketKind.VOID, original_ticket_id=sale["ticket_id"])
    return build(what, **void)
