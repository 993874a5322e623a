"""Sync rate, the KPI a POS integration is judged by: of the sales the POS says it had on a store's local day,
the share tillflow ingested (target > 99 %).

Both sides are reduced to the same tally per (store, local day): the set of sale ticket ids that still stand (a
CDC correction ``<id>~r2`` counts as its ticket ``<id>``; a sale voided since counts on neither side) and the net
amount of sales and voids (VOID tickets carry negative amounts, as the contract signs them). The POS side comes
from the vendor API (the poller's backfill query and mapping: sales made that day) or from the POS database (a
``SELECT`` of the tickets table with the source file's mapping); tillflow's side from ClickHouse's ``tickets``
table. The rate is the share of the POS's ticket ids that tillflow has. :func:`compare` is pure; the readers
below do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from schemas.models import PosTicket, TicketKind

TARGET = 0.99
"""A day under this rate is reported (exit code 1, alert PosSyncRateBelowTarget)."""
COUNTED = ("SALE", "VOID")


@dataclass
class DayTally:
    """What one side knows of a store's local day: sale ticket ids, the ids voided since, net of both."""

    ticket_ids: set[str] = field(default_factory=set)
    net: int = 0
    voided: set[str] = field(default_factory=set)

    @property
    def sales(self) -> set[str]:
        """Sales that still stand (a sale voided since is not one, on either side)."""
        return self.ticket_ids - self.voided


@dataclass(frozen=True)
class SyncRow:
    """One (source, store, local day): the POS's figures, tillflow's, and the rate."""

    source: str
    store_id: str
    local_date: date
    expected_tickets: int
    ingested_tickets: int
    missing_tickets: int
    extra_tickets: int
    expected_net: int
    ingested_net: int
    sync_rate: float
    missing_sample: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.sync_rate >= TARGET


Tallies = dict[tuple[str, date], DayTally]


def base_ticket_id(ticket_id: str) -> str:
    """A CDC correction or void (``42~r2``, ``42~void``) belongs to ticket ``42``; a POS API void
    (``square:X:void``) to ``square:X``."""
    return ticket_id.split("~", 1)[0].removesuffix(":void")


def add(tallies: Tallies, store_id: str, local_date: date, ticket_id: str, kind: str, net: int,
        original: str | None = None) -> None:  # fmt: skip
    """Count one ticket: a SALE adds its id, a VOID marks its original as voided; both add their net amount
    (a VOID's is negative, as the contract signs it)."""
    if kind not in COUNTED:
        return
    day = tallies.setdefault((store_id, local_date), DayTally())
    if kind == "SALE":
        day.ticket_ids.add(base_ticket_id(ticket_id))
    else:
        day.voided.add(base_ticket_id(original or ticket_id))
    day.net += net


def compare(source: str, expected: Tallies, ingested: Tallies, days: Iterable[date]) -> list[SyncRow]:
    """One row per store and day that either side knows, for the given days. A day the POS had no sale on
    has rate 1.0."""
    wanted = set(days)
    rows = []
    for store, day in sorted({k for k in (*expected, *ingested) if k[1] in wanted}):
        pos = expected.get((store, day), DayTally())
        ours = ingested.get((store, day), DayTally())
        expected_ids, ingested_ids = pos.sales, ours.sales
        matched = expected_ids & ingested_ids
        missing = sorted(expected_ids - ingested_ids)
        rate = len(matched) / len(expected_ids) if expected_ids else 1.0
        rows.append(SyncRow(source, store, day, len(expected_ids), len(matched), len(missing),
                            len(ingested_ids - expected_ids), pos.net, ours.net, rate,
                            tuple(missing[:10])))  # fmt: skip
    return rows


def local_window(days: Iterable[date], zones: Iterable[str]) -> tuple[datetime, datetime]:
    """The UTC range covering every one of ``days`` in every zone (a day is [00:00, 24:00) local)."""
    ds, zs = sorted(set(days)), {ZoneInfo(z) for z in zones} or {ZoneInfo("UTC")}
    start = min(datetime.combine(ds[0], time(), tzinfo=z) for z in zs)
    end = max(datetime.combine(ds[-1] + timedelta(days=1), time(), tzinfo=z) for z in zs)
    return start.astimezone(UTC), end.astimezone(UTC)


def tally_tickets(tickets: Iterable[PosTicket], zone_of: Callable[[str], str]) -> Tallies:
    """Mapped tickets (the vendor side) by store and the store's local day."""
    out: Tallies = {}
    for t in tickets:
        day = t.occurred_at.astimezone(ZoneInfo(zone_of(t.store_id))).date()
        add(out, t.store_id, day, t.ticket_id, t.kind.value, t.net_amount, t.original_ticket_id)
    return out


# --- the POS database (a CDC source file) -----------------------------------------------------------------------


def database_query(source: Any) -> str:
    """The ``SELECT`` of a CDC source's tickets table over [%s, %s) of its ticket time, with the mapped columns:
    ticket id, store (column or the fixed store), time, net amount, status."""
    cols = source.tables.tickets.columns
    store = cols.get("store_id")
    status = cols.get("status")
    table = f"{source.schema_name}.{source.tables.tickets.name}"
    select = [cols["ticket_id"], store or "NULL", cols["occurred_at"], cols["net_amount"], status or "NULL"]
    return (f"SELECT {', '.join(select)} FROM {table} "
            f"WHERE {cols['occurred_at']} >= %s AND {cols['occurred_at']} < %s")  # fmt: skip


def tally_database_rows(source: Any, rows: Iterable[tuple[Any, ...]], zone_of: Callable[[str], str]) -> Tallies:
    """Rows of :func:`database_query` by store and local day, statuses through the source's status_map (open
    tickets and unknown statuses are not sales); money to minor units as the normalizer reads it."""
    from producers.cdc.normalize import minor_units  # the normalizer's reading, so both sides agree

    zone = ZoneInfo(source.timezone)
    out: Tallies = {}
    for ticket_id, store, occurred, net, status in rows:
        kind = TicketKind.SALE if status is None else source.status_map.get(str(status))
        if kind != TicketKind.SALE:
            continue  # open, voided (the POS's final state has no sale) or not a sale
        store_id = str(store) if store is not None else str(source.store_id)
        if isinstance(occurred, datetime):
            ts = occurred if occurred.tzinfo else occurred.replace(tzinfo=zone)
        else:
            ts = datetime.combine(occurred, time(), tzinfo=zone)
        amount = minor_units(str(Decimal(str(net))), source.currency, source.amounts_in_minor_units)
        day = ts.astimezone(ZoneInfo(zone_of(store_id))).date()
        add(out, store_id, day, str(ticket_id), kind.value, amount)
    return out


# --- tillflow's side (ClickHouse) -------------------------------------------------------------------------------

INGESTED_SQL = (
    "SELECT store_id, local_date, ticket_id, kind, net_amount, original_ticket_id FROM tickets FINAL "
    "WHERE source = {source:String} AND local_date >= {first:Date} AND local_date <= {last:Date} "
    "AND kind IN ('SALE', 'VOID')"
)


def ingested_tallies(client: Any, source: str, days: Iterable[date]) -> Tallies:
    ds = sorted(set(days))
    result = client.query(INGESTED_SQL, parameters={"source": source, "first": ds[0], "last": ds[-1]})
    out: Tallies = {}
    for store, day, ticket_id, kind, net, original in result.result_rows:
        add(out, store, day, ticket_id, kind, int(net), original or None)
    return out


def write_rows(client: Any, rows: list[SyncRow], checked_at: datetime) -> None:
    """Append the rows to ``pos_sync_daily`` (ReplacingMergeTree: the latest check of a day wins)."""
    if not rows:
        return
    columns = ["source", "store_id", "local_date", "expected_tickets", "ingested_tickets", "missing_tickets",
               "extra_tickets", "expected_net", "ingested_net", "sync_rate", "checked_at"]  # fmt: skip
    data = [[r.source, r.store_id, r.local_date, r.expected_tickets, r.ingested_tickets, r.missing_tickets,
             r.extra_tickets, r.expected_net, r.ingested_net, r.sync_rate, checked_at] for r in rows]  # fmt: skip
    client.insert("pos_sync_daily", data, column_names=columns)


def zone_lookup(timezones: Mapping[str, str], default: str) -> Callable[[str], str]:
    return lambda store_id: timezones.get(store_id, default)
