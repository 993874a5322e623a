"""Pydantic models mirroring the Avro schemas in ``schemas/avro``.

The JSON form of every record uses the Avro field names. Timestamps are ISO 8601 with an offset or epoch
milliseconds on input, and always timezone-aware UTC datetimes inside. Money is a ``long`` in minor units.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# Field names that would carry a customer's identity. Matched case-insensitively against every key of a
# record and of its nested lines and payments; such a record is rejected, never stripped and passed on.
_PERSONAL_DATA = re.compile(
    r"customer|e_?mail|phone|loyalty|card_?number|cardholder|\bpan\b|first_?name|last_?name|full_?name"
    r"|address|birth|national_id|passport|iban",
    re.IGNORECASE,
)


class PersonalDataError(ValueError):
    """A record carried a field that looks like customer personal data."""


def _to_utc(value: Any) -> Any:
    """Accept epoch milliseconds or ISO 8601 with an offset; refuse naive times.

    The result is UTC, cut to whole milliseconds: the contracts are Avro ``timestamp-millis``, so a record
    reads back from Kafka equal to the one written.
    """
    if isinstance(value, bool):
        raise ValueError("a timestamp must be epoch milliseconds or ISO 8601 with an offset")
    if isinstance(value, int | float):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        try:
            value = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 timestamp: {value!r}") from exc
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"timestamp {value.isoformat()} has no UTC offset")
        value = value.astimezone(UTC)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


UtcDatetime = Annotated[datetime, BeforeValidator(_to_utc)]


def _currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise ValueError(f"currency must be an ISO 4217 code such as EUR, got {value!r}")
    return value


Currency = Annotated[str, AfterValidator(_currency)]


@cache
def _field_names(cls: type[BaseModel]) -> frozenset[str]:
    return frozenset(cls.__pydantic_fields__)


class Record(BaseModel):
    """Base of every contract: unknown fields are errors, and personal-data fields get a clear one."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    avro_name: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _refuse_personal_data(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = _field_names(cls)
            for key in data:
                if key not in known and isinstance(key, str) and _PERSONAL_DATA.search(key):
                    raise PersonalDataError(
                        f"field {key!r} looks like customer personal data; tillflow does not accept it"
                    )
        return data

    def to_avro(self) -> dict[str, Any]:
        """The dict fastavro writes: enums as their symbol, datetimes as aware UTC datetimes."""
        return self.model_dump(mode="python")

    def to_json(self) -> dict[str, Any]:
        """The JSON form: the same field names, timestamps as ISO 8601 in UTC."""
        return self.model_dump(mode="json")


class TicketKind(StrEnum):
    SALE = "SALE"
    REFUND = "REFUND"
    VOID = "VOID"
    EMPLOYEE_SALE = "EMPLOYEE_SALE"
    LAYAWAY = "LAYAWAY"
    DEFERRED = "DEFERRED"


class PaymentMethod(StrEnum):
    CASH = "CASH"
    CARD = "CARD"
    MOBILE = "MOBILE"
    GIFT_CARD = "GIFT_CARD"
    OTHER = "OTHER"


class Channel(StrEnum):
    IN_STORE = "IN_STORE"
    ONLINE = "ONLINE"
    DELIVERY = "DELIVERY"


class Payment(Record):
    method: PaymentMethod
    amount: int


class TicketLine(Record):
    sku: str = Field(min_length=1)
    description: str | None = None
    quantity: float
    unit_price: int
    discount_amount: int = 0
    net_amount: int
    category: str | None = None


# Kinds whose amounts are money back to the customer (or a cancelled sale): their amounts are <= 0.
REVERSING_KINDS = frozenset({TicketKind.REFUND, TicketKind.VOID})


class PosTicket(Record):
    """One POS ticket (topic ``pos.tickets``, key ``store_id``).

    Amounts are signed as money flows: sales are positive; a REFUND is negative; a VOID carries the negated
    amounts of the ticket it cancels (``original_ticket_id``), so the pair sums to zero. Summing
    ``net_amount`` over any set of tickets gives net takings. ``net_amount`` excludes tax and is
    ``gross_amount - discount_amount``.
    """

    avro_name: ClassVar[str] = "pos_ticket"

    ticket_id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    tenant_id: str | None = None
    terminal_id: str | None = None
    kind: TicketKind
    occurred_at: UtcDatetime
    currency: Currency
    gross_amount: int
    net_amount: int
    tax_amount: int
    discount_amount: int
    payments: tuple[Payment, ...] = ()
    channel: Channel = Channel.IN_STORE
    lines: tuple[TicketLine, ...] = ()
    original_ticket_id: str | None = None
    ingested_at: UtcDatetime

    @model_validator(mode="after")
    def _signs(self) -> PosTicket:
        reversing = self.kind in REVERSING_KINDS
        for name in ("gross_amount", "net_amount"):
            value = getattr(self, name)
            if reversing and value > 0:
                raise ValueError(f"{self.kind} ticket {self.ticket_id}: {name} {value} must be <= 0 (signed amounts)")
            if not reversing and value < 0:
                raise ValueError(f"{self.kind} ticket {self.ticket_id}: {name} {value} must be >= 0 (signed amounts)")
        return self


def signed_by_kind(ticket_fields: dict[str, Any]) -> dict[str, Any]:
    """Fields of a source that writes refunds and voids as positive figures plus a type code, with the
    contract's signs applied (negated for REFUND and VOID); already signed fields are returned as they are."""
    if ticket_fields["kind"] in REVERSING_KINDS and ticket_fields["net_amount"] > 0:
        return reversed_amounts(ticket_fields)
    return ticket_fields


def reversed_amounts(ticket_fields: dict[str, Any]) -> dict[str, Any]:
    """A ticket's fields (nested lines and payments as models or dicts) with every amount and quantity
    negated: the body of a VOID or REFUND that reverses it."""
    out = dict(ticket_fields)
    for key in ("gross_amount", "net_amount", "tax_amount", "discount_amount"):
        out[key] = -out[key]
    payments = [Payment.model_validate(p) for p in out.get("payments", ())]
    lines = [TicketLine.model_validate(ln) for ln in out.get("lines", ())]
    out["payments"] = tuple(p.model_copy(update={"amount": -p.amount}) for p in payments)
    out["lines"] = tuple(
        ln.model_copy(
            update={"quantity": -ln.quantity, "discount_amount": -ln.discount_amount, "net_amount": -ln.net_amount}
        )
        for ln in lines
    )
    return out


class CameraCount(Record):
    """People counted in one processed frame (topic ``camera.counts``, key ``store_id``)."""

    avro_name: ClassVar[str] = "camera_count"

    camera_id: str = Field(min_length=1)
    store_id: str = Field(min_length=1)
    zone_id: str | None = None
    frame_ts: UtcDatetime
    frame_seq: int = Field(ge=0)
    people_in_frame: int = Field(ge=0)
    entries: int = Field(ge=0)
    exits: int = Field(ge=0)
    detector: str


class HourlyConversion(Record):
    """Metrics of one store or zone in one store-local hour (topic ``conversion.hourly``)."""

    avro_name: ClassVar[str] = "hourly_conversion"

    store_id: str
    zone_id: str | None = None
    tenant_id: str | None = None
    mall_id: str | None = None
    category: str | None = None
    hour_start: UtcDatetime
    local_hour: str
    timezone: str
    currency: str | None = None
    visitors: int
    exits: int
    transactions: int
    net_revenue: int
    gross_revenue: int = 0
    discount_amount: int = 0
    units: float = 0.0
    refunds: int
    refund_amount: int = 0
    voids: int
    employee_sales: int
    cash_amount: int = 0
    conversion: float | None = None
    avg_ticket: float | None = None
    units_per_transaction: float | None = None
    revenue_per_visitor: float | None = None
    revenue_per_m2: float | None = None
    void_rate: float | None = None
    discount_rate: float | None = None
    cash_share: float | None = None
    quality_flags: tuple[str, ...] = ()
    is_final: bool
    revision: int = Field(ge=0)
    updated_at: UtcDatetime


class AlertKind(StrEnum):
    SALES_DROP = "SALES_DROP"
    TRAFFIC_DROP = "TRAFFIC_DROP"
    UNDERREPORTING = "UNDERREPORTING"
    FEED_SILENT = "FEED_SILENT"
    CAMERA_SILENT = "CAMERA_SILENT"


class AlertState(StrEnum):
    FIRING = "FIRING"
    RESOLVED = "RESOLVED"


class Severity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


class Alert(Record):
    """An alert about one store and hour (topic ``alerts``)."""

    avro_name: ClassVar[str] = "alert"

    alert_id: str
    kind: AlertKind
    state: AlertState
    severity: Severity = Severity.WARNING
    store_id: str
    tenant_id: str | None = None
    mall_id: str | None = None
    hour_start: UtcDatetime
    observed: float | None = None
    expected: float | None = None
    message: str
    fired_at: UtcDatetime
    details: dict[str, str] = Field(default_factory=dict)
