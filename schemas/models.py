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

from tillflow.errors import ContractError

# Field names that would carry a customer's identity. Matched case-insensitively against every key of a
# record and of its nested lines and payments; such a record is rejected, never stripped and passed on.
_PERSONAL_DATA = re.compile(
    r"customer|e_?mail|phone|loyalty|card_?number|cardholder|\bpan\b|first_?name|last_?name|full_?name"
    r"|address|birth|national_id|passport|iban",
    re.IGNORECASE,
)


def is_personal_field(name: str) -> bool:
    """Whether a field name looks like it carries a customer's identity (the rule of :class:`Record`)."""
    return bool(_PERSONAL_DATA.search(name))


REDACTED = "<redacted>"


def redact_personal_data(value: Any) -> Any:
    """``value`` (parsed JSON) with the value of every personal-data field, at any depth, replaced by
    :data:`REDACTED`: what a rejects file or a dead letter may keep of a refused record (field names stay)."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and is_personal_field(k) else redact_personal_data(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact_personal_data(v) for v in value]
    return value


class PersonalDataError(ContractError):
    """A record carried a field that looks like customer personal data."""


def _epoch_millis(millis: int | float) -> datetime:
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"epoch milliseconds {millis} are out of range") from None


def _to_utc(value: Any) -> Any:
    """Accept epoch milliseconds or ISO 8601 with an offset; refuse naive times.

    The result is UTC, cut to whole milliseconds: the contracts are Avro ``timestamp-millis``, so a record
    reads back from Kafka equal to the one written.
    """
    if isinstance(value, bool):
        raise ValueError("a timestamp must be epoch milliseconds or ISO 8601 with an offset")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"epoch milliseconds must be finite, got {value}")
        value = _epoch_millis(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return _epoch_millis(int(text))
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


# Active ISO 4217 currency codes (list one, 2025), without the fund, precious-metal, testing and "no currency"
# codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW, XAG, XAU, XBA-XBD, XDR, XPD, XPT, XSU, XTS, XUA, XXX):
# no till takes payment in those. ANG and XCG are both listed while the Caribbean guilder replaces the
# Antillean one.
ISO_4217_CODES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
    CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
    GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW
    ZWG
    """.split()  # noqa: SIM905
)


def _currency(value: str) -> str:
    if value not in ISO_4217_CODES:
        hint = f" (codes are upper case: {value.upper()})" if value.upper() in ISO_4217_CODES else ""
        raise ValueError(f"currency must be an active ISO 4217 code such as EUR, got {value!r}{hint}")
    return value


Currency = Annotated[str, AfterValidator(_currency)]
"""An active ISO 4217 currency code, upper case (EUR, INR, USD)."""

# ISO 4217 minor-unit exponents that are not 2. Everything else has cents.
MINOR_DIGITS = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0,
    "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}  # fmt: skip


def minor_digits(currency: str) -> int:
    """Digits after the decimal point of ``currency`` (JPY 0, EUR 2, KWD 3)."""
    return MINOR_DIGITS.get(currency.upper(), 2)


def format_minor(amount: int, currency: str) -> str:
    """Exact decimal text of an amount in minor units: 123456 EUR -> '1,234.56' (no float on the way)."""
    digits = minor_digits(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**digits)
    return f"{sign}{whole:,}" + (f".{frac:0{digits}d}" if digits else "")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError(f"must not be empty or blank, got {value!r}")
    return value


Id = Annotated[str, AfterValidator(_not_blank)]
"""An identifier: a string with at least one non-space character."""

# Bounds that keep one record to kilobytes: a 5 MB description was accepted end to end (issue 12).
MAX_TEXT = 1_000
MAX_LINES = 1_000
MAX_PAYMENTS = 100
Text = Annotated[str, Field(max_length=MAX_TEXT)]
BoundedId = Annotated[str, AfterValidator(_not_blank), Field(max_length=200)]

LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def _number_not_bool_or_text(value: Any) -> Any:
    """Numbers stay numbers: ``true`` is not 1 and ``"5"`` is not 5 in a contract field."""
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r}")
    return value


Long = Annotated[int, BeforeValidator(_number_not_bool_or_text), Field(ge=LONG_MIN, le=LONG_MAX)]
"""An Avro ``long``: a whole number in the signed 64-bit range."""
Int = Annotated[int, BeforeValidator(_number_not_bool_or_text), Field(ge=INT_MIN, le=INT_MAX)]
"""An Avro ``int``: a whole number in the signed 32-bit range."""
Double = Annotated[float, BeforeValidator(_number_not_bool_or_text), Field(allow_inf_nan=False)]
"""An Avro ``double`` that JSON can carry: finite, never NaN or infinity."""


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
                if key not in known and isinstance(key, str) and is_personal_field(key):
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
    amount: Long


class TicketLine(Record):
    sku: BoundedId
    description: Text | None = None
    quantity: Double
    unit_price: Long
    discount_amount: Long = 0
    net_amount: Long
    category: Text | None = None


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

    ticket_id: Id
    source: Id
    store_id: Id
    tenant_id: str | None = None
    terminal_id: str | None = None
    kind: TicketKind
    occurred_at: UtcDatetime
    currency: Currency
    gross_amount: Long
    net_amount: Long
    tax_amount: Long
    discount_amount: Long
    payments: Annotated[tuple[Payment, ...], Field(max_length=MAX_PAYMENTS)] = ()
    channel: Channel = Channel.IN_STORE
    lines: Annotated[tuple[TicketLine, ...], Field(max_length=MAX_LINES)] = ()
    original_ticket_id: str | None = None
    ingested_at: UtcDatetime

    @model_validator(mode="after")
    def _signs(self) -> PosTicket:
        """The ticket's amounts, and each line's quantity and net amount, carry the kind's sign: >= 0 for a
        sale, <= 0 for a REFUND or VOID (the lines of a reversing ticket are its sale's lines negated,
        ``reversed_amounts``). A line against its ticket's sign (a SALE line of quantity -1) is refused."""
        reversing = self.kind in REVERSING_KINDS
        sign = "<= 0" if reversing else ">= 0"
        figures: list[tuple[str, float]] = [(n, getattr(self, n)) for n in ("gross_amount", "net_amount")]
        for number, line in enumerate(self.lines, start=1):
            figures += [(f"line {number} (sku {line.sku}) {n}", getattr(line, n)) for n in ("quantity", "net_amount")]
        for name, value in figures:
            if (value > 0) if reversing else (value < 0):
                shown = f"{value:g}" if isinstance(value, float) else value
                raise ValueError(f"{self.kind} ticket {self.ticket_id}: {name} {shown} must be {sign} (signed amounts)")
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

    camera_id: Id
    store_id: Id
    zone_id: str | None = None
    frame_ts: UtcDatetime
    frame_seq: Long = Field(ge=0)
    people_in_frame: Int = Field(ge=0)
    entries: Int = Field(ge=0)
    exits: Int = Field(ge=0)
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
    currency: Currency | None = None
    visitors: Long
    exits: Long
    transactions: Long
    net_revenue: Long
    gross_revenue: Long = 0
    discount_amount: Long = 0
    units: Double = 0.0
    refunds: Long
    refund_amount: Long = 0
    voids: Long
    employee_sales: Long
    cash_amount: Long = 0
    conversion: Double | None = None
    avg_ticket: Double | None = None
    units_per_transaction: Double | None = None
    revenue_per_visitor: Double | None = None
    revenue_per_m2: Double | None = None
    void_rate: Double | None = None
    discount_rate: Double | None = None
    cash_share: Double | None = None
    quality_flags: tuple[str, ...] = ()
    is_final: bool
    revision: Int = Field(ge=0)
    updated_at: UtcDatetime
    complete_share: Double | None = None
    pos_complete_share: Double | None = None
    all_complete_share: Double | None = None


class AlertKind(StrEnum):
    SALES_DROP = "SALES_DROP"
    TRAFFIC_DROP = "TRAFFIC_DROP"
    UNDERREPORTING = "UNDERREPORTING"
    FEED_SILENT = "FEED_SILENT"
    CAMERA_SILENT = "CAMERA_SILENT"
    UNDERSTAFFED = "UNDERSTAFFED"
    QUEUE_LONG = "QUEUE_LONG"


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
    observed: Double | None = None
    expected: Double | None = None
    message: str
    fired_at: UtcDatetime
    details: dict[str, str] = Field(default_factory=dict)


class HourlyForecast(Record):
    """Expected visitors and net sales of one store-local hour (topic ``forecast.hourly``, key ``store_id``)."""

    avro_name: ClassVar[str] = "forecast_hourly"

    store_id: Id
    tenant_id: str | None = None
    mall_id: str | None = None
    hour_start: UtcDatetime
    local_hour: str
    timezone: str
    currency: Currency | None = None
    issued_at: UtcDatetime
    horizon_hours: Int = Field(ge=0)
    visitors: Double = Field(ge=0)
    net_revenue: Long
    method: str
