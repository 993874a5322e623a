"""A mapping spec for one kind of POS export file: format, encoding, numbers, dates and where each field is.

``fields`` maps a ticket field to where it is in a row: a column name (CSV/TXT with a header), a 0-based
column index, ``[start, end]`` character positions (fixed-width, 0-based, end exclusive), or an XPath relative
to the ticket, line or payment element (XML). Each row of a tabular file is one ticket line; rows with the
same ticket number make one ticket, whose ticket-level fields come from its first row.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.catalogue import IanaTimezone
from schemas.models import Channel, PaymentMethod, TicketKind
from tillflow.documents import load_document
from tillflow.errors import ConfigError

TICKET_FIELDS = {
    "ticket", "occurred_at", "date", "time", "store", "terminal", "kind", "original_ticket", "currency",
    "tax_amount", "total", "payment_method", "payment_amount", "channel",
}  # fmt: skip
LINE_FIELDS = {"sku", "description", "quantity", "unit_price", "line_discount", "line_net", "category"}
PAYMENT_FIELDS = {"method", "amount"}

Location = str | int | list[int]


class SpecError(ConfigError):
    """A spec that cannot be used; the message names the file and the problem."""


class FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Source name; the ticket `source`.")
    format: Literal["csv", "txt", "xml", "fixed"]
    patterns: list[str] = Field(default_factory=lambda: ["*"], description="Glob patterns of files to take.")
    encoding: str = "utf-8"
    delimiter: str | None = Field(None, description="CSV/TXT column separator; default ',' (csv) or tab (txt).")
    header: bool = Field(True, description="CSV/TXT: the first row names the columns.")
    skip_lines: int = Field(0, ge=0, description="Lines to skip at the top (banners) before the header/data.")
    decimal: str = Field(".", min_length=1, max_length=1)
    thousands: str | None = Field(None, max_length=1)
    amounts: Literal["major", "minor"] = Field("major", description="major: 12.50; minor: 1250 (cents).")
    prices_include_tax: bool = Field(False, description="Line prices and totals include the tax.")
    date_format: str = Field("%Y-%m-%dT%H:%M:%S", description="strptime format of `occurred_at` (or date+time).")
    time_format: str = Field("%H:%M:%S", description="strptime format of a separate `time` field.")
    timezone: IanaTimezone = Field("UTC", description="Zone of times without an offset (the store's local time).")
    currency: str | None = Field(None, description="Currency when the file has no `currency` field.")
    store: str | None = Field(None, description="store_id when the file has no `store` field.")
    stores: dict[str, str] = Field(default_factory=dict, description="File store code -> store_id.")
    tenant_id: str | None = None
    kinds: dict[str, TicketKind] = Field(default_factory=dict, description="File code -> SALE/REFUND/VOID/...")
    payment_methods: dict[str, PaymentMethod] = Field(default_factory=dict, description="File code -> method.")
    channels: dict[str, Channel] = Field(default_factory=dict)
    fields: dict[str, Location] = Field(description="Ticket field -> column, index, [start, end] or XPath.")
    # XML
    ticket_xpath: str | None = Field(None, description="XML: XPath of each ticket element.")
    line_xpath: str | None = Field(None, description="XML: XPath of the line elements, relative to a ticket.")
    payment_xpath: str | None = Field(None, description="XML: XPath of the payment elements, relative to a ticket.")
    payment_fields: dict[str, str] = Field(default_factory=dict, description="XML: method/amount XPaths.")
    ready_suffix: str | None = Field(None, description="Take a file only once `<file><suffix>` (e.g. .done) exists.")
    settle_seconds: float = Field(2.0, ge=0, description="A file must be unchanged this long to be taken.")

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value

    @model_validator(mode="after")
    def _check(self) -> FileSpec:
        unknown = set(self.fields) - TICKET_FIELDS - LINE_FIELDS
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        if "ticket" not in self.fields:
            raise ValueError("fields.ticket (the ticket number) is required")
        if "occurred_at" not in self.fields and "date" not in self.fields:
            raise ValueError("fields.occurred_at (or fields.date [+ time]) is required")
        if "store" not in self.fields and not self.store:
            raise ValueError("give fields.store or a fixed store")
        if "currency" not in self.fields and not self.currency:
            raise ValueError("give fields.currency or a fixed currency")
        if self.format == "xml" and not self.ticket_xpath:
            raise ValueError("an xml spec needs ticket_xpath")
        if self.format == "fixed":
            bad = [k for k, v in self.fields.items() if not (isinstance(v, list) and len(v) == 2)]
            if bad:
                raise ValueError(f"a fixed-width spec needs [start, end] positions; not for {', '.join(bad)}")
        if self.decimal == self.thousands:
            raise ValueError("decimal and thousands separators must differ")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_spec(path: Path) -> FileSpec:
    """Read and validate a file mapping spec (YAML or TOML)."""
    return load_document(path, FileSpec, SpecError, "format and fields")
