"""Lease terms per tenant: what percentage rent a mall charges on which sales.

Read from a YAML (or TOML) file beside the store catalogue with one top-level list, ``leases``. Each lease
binds one tenant in one mall (its stores there, from the catalogue) to a monthly base rent, a percentage and a
breakpoint, and says which sales count: channels (online and delivery orders only where the lease says so),
refunds netted or not, employee sales or not. Errors name the file, the key path and the reason, and are
checked against the catalogue (unknown tenant, store of another tenant, currency that does not match).

Money is in minor units (integers); the percentage is a decimal string or number such as ``"7.5"``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from schemas.catalogue import Catalogue
from schemas.models import Channel, Currency, TicketKind
from tillflow.documents import read_document, validate_checked
from tillflow.errors import ConfigError


class LeaseError(ConfigError):
    """A lease file that cannot be used; the message names file, key and reason."""


def _percent(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("a percentage is a number such as 7.5")
    try:
        rate = Decimal(str(value).strip().removesuffix("%"))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a percentage such as 7.5") from None
    if not rate.is_finite() or not 0 < rate <= 100:
        raise ValueError(f"percentage {value!r} must be above 0 and at most 100")
    return rate


Percent = Annotated[Decimal, BeforeValidator(_percent)]


class Lease(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str = Field(min_length=1)
    mall_id: str = Field(min_length=1)
    stores: tuple[str, ...] = ()
    """The tenant's stores this lease covers; empty: every store of the tenant in the mall."""
    currency: Currency
    base_rent: int = Field(ge=0)
    """Monthly base (minimum) rent, minor units."""
    percentage: Percent
    """Percentage rent rate, in percent of counted sales above the breakpoint."""
    breakpoint: Literal["natural"] | Annotated[int, Field(ge=0)] = "natural"
    """Monthly sales above which percentage rent is owed: ``natural`` (base rent / rate) or minor units."""
    channels: tuple[Channel, ...] = (Channel.IN_STORE,)
    """Channels whose sales count; online (ONLINE) and delivery (DELIVERY) orders only when listed."""
    refunds_netted: bool = True
    """Refunds reduce counted sales (most leases); False: only sales count."""
    employee_sales: bool = False
    """Employee purchases count as sales."""
    layaway_and_deferred: bool = True
    """Layaway deposits and deferred-payment sales count when they are rung up."""

    @field_validator("channels")
    @classmethod
    def _some_channel(cls, value: tuple[Channel, ...]) -> tuple[Channel, ...]:
        if not value:
            raise ValueError("at least one channel must count")
        if len(set(value)) != len(value):
            raise ValueError("a channel is listed twice")
        return value

    def counts(self, channel: str, kind: str) -> bool:
        """Whether a ticket of this channel and kind counts towards the lease's sales.

        VOIDs always count: a void cancels a counted sale with negated amounts.
        """
        if channel not in self.channels:
            return False
        if kind in (TicketKind.SALE, TicketKind.VOID):
            return True
        if kind == TicketKind.REFUND:
            return self.refunds_netted
        if kind == TicketKind.EMPLOYEE_SALE:
            return self.employee_sales
        if kind in (TicketKind.LAYAWAY, TicketKind.DEFERRED):
            return self.layaway_and_deferred
        return False

    def describe(self) -> str:
        """The counting rules in one line, as printed on the statement."""
        parts = ["channels " + ", ".join(c.value for c in self.channels)]
        parts.append("refunds netted" if self.refunds_netted else "refunds not deducted")
        parts.append("employee sales count" if self.employee_sales else "employee sales excluded")
        if not self.layaway_and_deferred:
            parts.append("layaway and deferred excluded")
        return "; ".join(parts)


class LeaseBook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    leases: tuple[Lease, ...]

    @model_validator(mode="after")
    def _unique(self) -> LeaseBook:
        seen: set[tuple[str, str]] = set()
        problems = []
        for i, lease in enumerate(self.leases):
            key = (lease.mall_id, lease.tenant_id)
            if key in seen:
                problems.append(f"leases[{i}]: a second lease for tenant {lease.tenant_id!r} in mall {lease.mall_id!r}")
            seen.add(key)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def of_mall(self, mall_id: str) -> list[Lease]:
        return [lease for lease in self.leases if lease.mall_id == mall_id]


def lease_stores(lease: Lease, catalogue: Catalogue) -> list[str]:
    """The store ids a lease covers (its ``stores``, else every store of the tenant in the mall)."""
    if lease.stores:
        return list(lease.stores)
    return [s.id for s in catalogue.stores if s.tenant_id == lease.tenant_id and s.mall_id == lease.mall_id]


def _catalogue_problems(book: LeaseBook, catalogue: Catalogue, path: Path) -> list[str]:
    problems = []
    by_id = {s.id: s for s in catalogue.stores}
    for i, lease in enumerate(book.leases):
        where = f"{path}: leases[{i}]"
        for j, store_id in enumerate(lease.stores):
            store = by_id.get(store_id)
            if store is None:
                problems.append(f"{where}.stores[{j}]: no store {store_id!r} in the catalogue")
            elif store.tenant_id != lease.tenant_id or store.mall_id != lease.mall_id:
                problems.append(
                    f"{where}.stores[{j}]: store {store_id!r} belongs to tenant {store.tenant_id!r} in mall "
                    f"{store.mall_id!r}, not tenant {lease.tenant_id!r} in {lease.mall_id!r}"
                )
        stores = [by_id[s] for s in lease_stores(lease, catalogue) if s in by_id]
        if not lease.stores and not stores:
            problems.append(
                f"{where}.tenant_id: the catalogue has no store of tenant {lease.tenant_id!r} in mall {lease.mall_id!r}"
            )
        for store in stores:
            if store.currency != lease.currency:
                problems.append(
                    f"{where}.currency: lease in {lease.currency} but store {store.id!r} trades in {store.currency}"
                )
    return problems


def parse_leases(data: Any, catalogue: Catalogue, path: Path = Path("<leases>")) -> LeaseBook:
    return validate_checked(
        LeaseBook, data, path, LeaseError, "a 'leases' list", lambda book: _catalogue_problems(book, catalogue, path)
    )


def load_leases(path: str | Path, catalogue: Catalogue) -> LeaseBook:
    """Read and validate a lease file (.yaml, .yml or .toml) against the catalogue."""
    return parse_leases(read_document(path, LeaseError), catalogue, Path(path))
