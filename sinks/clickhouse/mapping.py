"""Records to ClickHouse columns: pure functions, no I/O.

The sink maps a whole batch of one topic at a time: records come in as fastavro decodes them with the
logical types left out (:class:`schemas.serde.PlainDecoder`: timestamps are epoch milliseconds, enums
their symbols), and go out as one list per column of :data:`COLUMNS`, ready for a column-oriented insert.
No model is built per record. The Avro schema already fixes every type and range; what the contract adds
on top (ids not blank, signs by ticket kind, ISO 4217 currency, counts not negative, finite numbers,
timestamps ClickHouse can hold and tickets not from the future) is checked here over the columns, and a
record that fails gets its reason (stage ``validate``), as does one that cannot be placed (stage ``map``:
its store is not in the catalogue, so its local time is unknown).

Values are what ClickHouse stores: ``DateTime64(3)`` as epoch milliseconds, ``DateTime`` as epoch
seconds, ``Date`` as days since 1970-01-01; optional strings become '' (sort keys cannot be Nullable).
:func:`rows_for` gives the same mapping as rows of Python values for one validated model (tools, tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.catalogue import Catalogue
from schemas.models import ISO_4217_CODES, REVERSING_KINDS, Record
from schemas.topics import (
    ALERTS,
    CAMERA_COUNTS,
    CONVERSION_HOURLY,
    FORECAST_HOURLY,
    POS_TICKETS,
    STAFF_SHIFTS,
    STOREOPS_HOURLY,
)
from sinks.clickhouse.storeops_mapping import STOREOPS_COLUMNS
from tillflow.errors import MappingError

Row = tuple[Any, ...]
Plain = dict[str, Any]
"""One record as fastavro reads it without logical types."""

COLUMNS: dict[str, list[str]] = {
    "stores": ["store_id", "name", "timezone", "area_m2", "category", "mall_id", "tenant_id", "currency", "loaded_at"],
    "zones": ["store_id", "zone_id", "name", "area_m2", "loaded_at"],
    "tickets": [
        "ticket_id", "source", "store_id", "tenant_id", "terminal_id", "kind", "channel", "occurred_at", "timezone",
        "local_date", "local_hour", "currency", "gross_amount", "net_amount", "tax_amount", "discount_amount",
        "cash_amount", "card_amount", "payment_methods", "payment_amounts", "line_count", "units",
        "original_ticket_id", "ingested_at",
    ],
    "ticket_lines": [
        "ticket_id", "line_no", "store_id", "kind", "occurred_at", "timezone", "local_date", "sku", "description",
        "category", "quantity", "unit_price", "discount_amount", "net_amount", "ingested_at",
    ],
    "camera_frames": [
        "camera_id", "store_id", "zone_id", "frame_ts", "timezone", "frame_seq", "people_in_frame", "entries",
        "exits", "detector",
    ],
    "conversion_hourly": [
        "store_id", "zone_id", "tenant_id", "mall_id", "category", "hour_start", "local_hour", "local_date",
        "timezone", "currency", "visitors", "exits", "transactions", "net_revenue", "gross_revenue",
        "discount_amount", "units", "refunds", "refund_amount", "voids", "employee_sales", "cash_amount",
        "conversion", "avg_ticket", "units_per_transaction", "revenue_per_visitor", "revenue_per_m2", "void_rate",
        "discount_rate", "cash_share", "quality_flags", "is_final", "revision", "updated_at", "version",
        "complete_share", "pos_complete_share", "all_complete_share",
    ],
    "alerts": [
        "alert_id", "kind", "state", "severity", "store_id", "tenant_id", "mall_id", "hour_start", "timezone",
        "observed", "expected", "message", "fired_at", "details",
    ],
    "forecast_hourly": [
        "store_id", "tenant_id", "mall_id", "hour_start", "local_hour", "local_date", "timezone", "currency",
        "issued_at", "horizon_hours", "visitors", "net_revenue", "method",
    ],
}  # fmt: skip
COLUMNS |= STOREOPS_COLUMNS

# Tables written for each topic, in insert order (a ticket before its lines).
TOPIC_TABLES: dict[str, tuple[str, ...]] = {
    POS_TICKETS: ("tickets", "ticket_lines"),
    CAMERA_COUNTS: ("camera_frames",),
    CONVERSION_HOURLY: ("conversion_hourly",),
    ALERTS: ("alerts",),
    STAFF_SHIFTS: ("staff_shifts",),
    STOREOPS_HOURLY: ("storeops_hourly",),
    FORECAST_HOURLY: ("forecast_hourly",),
}

# How time columns are stored (see the module docstring); the other columns are plain values.
MILLIS_COLUMNS = frozenset(
    {"occurred_at", "ingested_at", "frame_ts", "updated_at", "fired_at", "loaded_at", "issued_at", "start_at", "end_at"}
)
SECONDS_COLUMNS = frozenset({"hour_start"})
MILLIS_HOUR_START = frozenset({"storeops_hourly"})
"""Tables whose ``hour_start`` is a ``DateTime64(3)`` (epoch milliseconds), not a ``DateTime``."""
DAYS_COLUMNS = frozenset({"local_date"})

# Timestamp fields of each topic's records (epoch milliseconds when decoded without logical types).
TIME_FIELDS: dict[str, tuple[str, ...]] = {
    POS_TICKETS: ("occurred_at", "ingested_at"),
    CAMERA_COUNTS: ("frame_ts",),
    CONVERSION_HOURLY: ("hour_start", "updated_at"),
    ALERTS: ("hour_start", "fired_at"),
    FORECAST_HOURLY: ("hour_start", "issued_at"),
    STAFF_SHIFTS: ("start_at", "end_at", "ingested_at"),
    STOREOPS_HOURLY: ("hour_start", "updated_at"),
}

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
# DateTime64(3) holds 1900-01-01 to 2299-12-31; a timestamp outside cannot be stored as it is.
MIN_MS = int((datetime(1900, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()) * 1000
MAX_MS = int((datetime(2300, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()) * 1000 - 1
FUTURE_SLACK_MS = DAY_MS
"""A ticket may not occur more than this after it was ingested (the ``not_from_the_future`` table constraint)."""


@dataclass
class Mapped:
    """Columns per table for a batch of records of one topic, and the records refused with their reasons."""

    columns: dict[str, list[list[Any]]] = field(default_factory=dict)
    """Table -> one list per column of :data:`COLUMNS` (insert order as in :data:`TOPIC_TABLES`)."""
    owners: dict[str, list[int]] = field(default_factory=dict)
    """Table -> for each row, the index (in the batch) of the record it came from."""
    rejects: dict[int, tuple[str, str]] = field(default_factory=dict)
    """Index of a refused record -> (stage, reason): ``validate`` (breaks the contract) or ``map``."""

    def rows(self, table: str) -> int:
        return len(self.owners.get(table, ()))

    def take(self, keep: set[int]) -> Mapped:
        """The rows of the records whose index is in ``keep`` (rejects are not carried)."""
        out = Mapped()
        for table, cols in self.columns.items():
            owners = self.owners[table]
            picked = [j for j, owner in enumerate(owners) if owner in keep]
            out.columns[table] = [[col[j] for j in picked] for col in cols]
            out.owners[table] = [owners[j] for j in picked]
        return out


# ---- time ---------------------------------------------------------------------------------------------

_QUARTER_MS = 900_000


class LocalClock:
    """Store-local dates and hours of epoch-millisecond instants, cached per zone and quarter hour.

    Every UTC offset change in the tz database falls on a quarter hour, so the offset at the start of a
    quarter applies to the whole quarter; a quarter whose start and end offsets differ (one holding a
    change) is resolved per instant.
    """

    def __init__(self) -> None:
        self._zones: dict[str, ZoneInfo] = {}
        self._offsets: dict[tuple[str, int], int | None] = {}

    def _offset_at(self, zone: ZoneInfo, ms: int) -> int:
        off = (EPOCH + timedelta(milliseconds=ms)).astimezone(zone).utcoffset()
        return int(off.total_seconds() * 1000) if off is not None else 0

    def offset_ms(self, timezone: str, ms: int) -> int:
        quarter = ms // _QUARTER_MS
        key = (timezone, quarter)
        try:
            cached = self._offsets[key]
        except KeyError:
            zone = self._zones.get(timezone)
            if zone is None:
                zone = self._zones[timezone] = ZoneInfo(timezone)
            start, end = (
                self._offset_at(zone, quarter * _QUARTER_MS),
                self._offset_at(zone, (quarter + 1) * _QUARTER_MS - 1),
            )
            cached = self._offsets[key] = start if start == end else None
        if cached is not None:
            return cached
        return self._offset_at(self._zones[timezone], ms)

    def local_ms(self, timezones: Sequence[str], instants: Sequence[int]) -> list[int]:
        """Local wall-clock time as milliseconds since the local epoch, per (zone, instant)."""
        offset = self.offset_ms
        return [ms + offset(tz, ms) for tz, ms in zip(timezones, instants, strict=True)]


# ---- checks over columns ------------------------------------------------------------------------------


def _reject(rejects: dict[int, tuple[str, str]], bad: Sequence[int], reason: Callable[[int], str]) -> None:
    for i in bad:
        rejects.setdefault(i, ("validate", reason(i)))


def check_ids(rejects: dict[int, tuple[str, str]], name: str, column: Sequence[str]) -> None:
    bad = [i for i, v in enumerate(column) if not v or v.isspace()]
    _reject(rejects, bad, lambda i: f"{name}: must not be empty or blank, got {column[i]!r}")


def check_not_negative(rejects: dict[int, tuple[str, str]], name: str, column: Sequence[int]) -> None:
    bad = [i for i, v in enumerate(column) if v < 0]
    _reject(rejects, bad, lambda i: f"{name}: must be >= 0, got {column[i]}")


def check_finite(rejects: dict[int, tuple[str, str]], name: str, column: Sequence[float | None]) -> None:
    isfinite = math.isfinite
    bad = [i for i, v in enumerate(column) if v is not None and not isfinite(v)]
    _reject(rejects, bad, lambda i: f"{name}: must be a finite number, got {column[i]}")


def check_currency(
    rejects: dict[int, tuple[str, str]], name: str, column: Sequence[str | None], optional: bool
) -> None:
    codes = ISO_4217_CODES
    bad = [i for i, v in enumerate(column) if v not in codes and not (optional and v is None)]

    def reason(i: int) -> str:
        value = column[i]
        upper = str(value).upper()
        hint = f" (codes are upper case: {upper})" if upper in codes else ""
        return f"{name} must be an active ISO 4217 code such as EUR, got {value!r}{hint}"

    _reject(rejects, bad, reason)


def check_time(rejects: dict[int, tuple[str, str]], name: str, column: Sequence[int]) -> None:
    bad = [i for i, v in enumerate(column) if not MIN_MS <= v <= MAX_MS]
    _reject(rejects, bad, lambda i: f"{name}: epoch milliseconds {column[i]} are outside 1900-2299")


def check_signs(
    rejects: dict[int, tuple[str, str]],
    kinds: Sequence[str],
    gross: Sequence[int],
    net: Sequence[int],
    ids: Sequence[str],
) -> None:
    """Sales are >= 0; a REFUND or VOID is <= 0 (amounts are signed as money flows)."""
    reversing = REVERSING_KINDS
    bad = [
        i
        for i, (k, g, n) in enumerate(zip(kinds, gross, net, strict=True))
        if ((g > 0 or n > 0) if k in reversing else (g < 0 or n < 0))
    ]

    def reason(i: int) -> str:
        reverses = kinds[i] in reversing
        sign = "<= 0" if reverses else ">= 0"
        wrong_gross = gross[i] > 0 if reverses else gross[i] < 0
        name, value = ("gross_amount", gross[i]) if wrong_gross else ("net_amount", net[i])
        return f"{kinds[i]} ticket {ids[i]}: {name} {value} must be {sign} (signed amounts)"

    _reject(rejects, bad, reason)


def place(
    rejects: dict[int, tuple[str, str]], store_ids: Sequence[str], timezones: Mapping[str, str]
) -> list[str | None]:
    """The time zone of each record's store; a store missing from the catalogue is a ``map`` reject."""
    zones = [timezones.get(s) for s in store_ids]
    for i, tz in enumerate(zones):
        if tz is None:
            rejects.setdefault(
                i, ("map", f"store {store_ids[i]!r} is not in the catalogue, so its local time is unknown")
            )
    return zones


def _kept(records: Sequence[Plain], rejects: Mapping[int, Any]) -> tuple[list[int], list[Plain]]:
    if not rejects:
        return list(range(len(records))), list(records)
    index = [i for i in range(len(records)) if i not in rejects]
    return index, [records[i] for i in index]


# ---- per topic ----------------------------------------------------------------------------------------


def ticket_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``tickets`` and ``ticket_lines`` columns of a batch of POS tickets."""
    out = Mapped()
    rejects = out.rejects
    ids = [r["ticket_id"] for r in records]
    stores = [r["store_id"] for r in records]
    occurred = [r["occurred_at"] for r in records]
    ingested = [r["ingested_at"] for r in records]
    kinds = [r["kind"] for r in records]
    check_ids(rejects, "ticket_id", ids)
    check_ids(rejects, "source", [r["source"] for r in records])
    check_ids(rejects, "store_id", stores)
    check_currency(rejects, "currency", [r["currency"] for r in records], optional=False)
    check_signs(rejects, kinds, [r["gross_amount"] for r in records], [r["net_amount"] for r in records], ids)
    check_time(rejects, "occurred_at", occurred)
    check_time(rejects, "ingested_at", ingested)
    future = [i for i, (o, g) in enumerate(zip(occurred, ingested, strict=True)) if o > g + FUTURE_SLACK_MS]
    _reject(
        rejects,
        future,
        lambda i: f"occurred_at is more than a day after ingested_at ({occurred[i]} > {ingested[i]} ms)",
    )
    lines_of = [r["lines"] for r in records]
    isfinite = math.isfinite
    for i, lines in enumerate(lines_of):
        for line in lines:
            sku = line["sku"]
            if not sku or sku.isspace():
                rejects.setdefault(i, ("validate", f"lines.sku: must not be empty or blank, got {sku!r}"))
            if not isfinite(line["quantity"]):
                rejects.setdefault(i, ("validate", f"lines.quantity: must be a finite number, got {line['quantity']}"))
    zones = place(rejects, stores, timezones)

    index, kept = _kept(records, rejects)
    if rejects:
        ids, stores, occurred, ingested, kinds = (
            [col[i] for i in index] for col in (ids, stores, occurred, ingested, kinds)
        )
        lines_of = [lines_of[i] for i in index]
    tz = [zones[i] for i in index] if rejects else zones
    local = clock.local_ms(tz, occurred)  # type: ignore[arg-type]
    days = [ms // DAY_MS for ms in local]
    payments = [r["payments"] for r in kept]
    methods = [[p["method"] for p in ps] for ps in payments]
    amounts = [[p["amount"] for p in ps] for ps in payments]
    out.columns["tickets"] = [
        ids,
        [r["source"] for r in kept],
        stores,
        [r["tenant_id"] or "" for r in kept],
        [r["terminal_id"] or "" for r in kept],
        kinds,
        [r["channel"] for r in kept],
        occurred,
        tz,
        days,
        [ms // HOUR_MS % 24 for ms in local],
        [r["currency"] for r in kept],
        [r["gross_amount"] for r in kept],
        [r["net_amount"] for r in kept],
        [r["tax_amount"] for r in kept],
        [r["discount_amount"] for r in kept],
        [sum(a for m, a in zip(ms, am, strict=True) if m == "CASH") for ms, am in zip(methods, amounts, strict=True)],
        [sum(a for m, a in zip(ms, am, strict=True) if m == "CARD") for ms, am in zip(methods, amounts, strict=True)],
        methods,
        amounts,
        [len(lines) for lines in lines_of],
        [float(sum(line["quantity"] for line in lines)) for lines in lines_of],
        [r["original_ticket_id"] or "" for r in kept],
        ingested,
    ]
    out.owners["tickets"] = index
    line_cols: list[list[Any]] = [[] for _ in COLUMNS["ticket_lines"]]
    (l_id, l_no, l_store, l_kind, l_occ, l_tz, l_day, l_sku, l_desc, l_cat, l_qty, l_price, l_disc, l_net, l_ing) = (
        line_cols
    )
    owners: list[int] = []
    for j, lines in enumerate(lines_of):
        if not lines:
            continue
        n = len(lines)
        owners += [index[j]] * n
        l_id += [ids[j]] * n
        l_no += range(1, n + 1)
        l_store += [stores[j]] * n
        l_kind += [kinds[j]] * n
        l_occ += [occurred[j]] * n
        l_tz += [tz[j]] * n
        l_day += [days[j]] * n
        l_ing += [ingested[j]] * n
        for line in lines:
            l_sku.append(line["sku"])
            l_desc.append(line["description"] or "")
            l_cat.append(line["category"] or "")
            l_qty.append(line["quantity"])
            l_price.append(line["unit_price"])
            l_disc.append(line["discount_amount"])
            l_net.append(line["net_amount"])
    out.columns["ticket_lines"] = line_cols
    out.owners["ticket_lines"] = owners
    return out


def camera_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``camera_frames`` columns of a batch of per-frame counts."""
    out = Mapped()
    rejects = out.rejects
    cams = [r["camera_id"] for r in records]
    stores = [r["store_id"] for r in records]
    ts = [r["frame_ts"] for r in records]
    seq = [r["frame_seq"] for r in records]
    people = [r["people_in_frame"] for r in records]
    entries = [r["entries"] for r in records]
    exits = [r["exits"] for r in records]
    check_ids(rejects, "camera_id", cams)
    check_ids(rejects, "store_id", stores)
    check_time(rejects, "frame_ts", ts)
    for name, column in (("frame_seq", seq), ("people_in_frame", people), ("entries", entries), ("exits", exits)):
        check_not_negative(rejects, name, column)
    zones = place(rejects, stores, timezones)
    index, _ = _kept(records, rejects)
    cols = [cams, stores, [r["zone_id"] or "" for r in records], ts, zones, seq, people, entries, exits,
            [r["detector"] for r in records]]  # fmt: skip
    if rejects:
        cols = [[col[i] for i in index] for col in cols]
    out.columns["camera_frames"] = cols
    out.owners["camera_frames"] = index
    return out


_MS_BITS = 41  # epoch milliseconds fit in 41 bits until 2039


def hourly_version(revision: int, is_final: bool, updated_at: datetime | int) -> int:
    """ReplacingMergeTree version: revision first, then final over live, then the newest update."""
    ms = updated_at if isinstance(updated_at, int) else int(updated_at.timestamp() * 1000)
    return (revision << (_MS_BITS + 1)) | (int(is_final) << _MS_BITS) | (ms & ((1 << _MS_BITS) - 1))


def local_date_of(local_hour: str, hour_start_ms: int, timezone: str, clock: LocalClock) -> int:
    """Days since 1970-01-01 of an hour's local date: from ``local_hour`` (ISO 8601), else from the zone."""
    try:
        return datetime.fromisoformat(local_hour).date().toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return (hour_start_ms + clock.offset_ms(timezone, hour_start_ms)) // DAY_MS


_HOURLY_LONGS = ("visitors", "exits", "transactions", "net_revenue", "gross_revenue", "discount_amount", "units",
                 "refunds", "refund_amount", "voids", "employee_sales", "cash_amount")  # fmt: skip
_HOURLY_RATIOS = ("conversion", "avg_ticket", "units_per_transaction", "revenue_per_visitor", "revenue_per_m2",
                  "void_rate", "discount_rate", "cash_share")  # fmt: skip

_SHARES = ("complete_share", "pos_complete_share", "all_complete_share")
"""Data availability of a store-hour (streams/availability.py); the last two are absent from older records."""


def hourly_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``conversion_hourly`` columns of a batch of hourly records (their time zone travels in the record)."""
    out = Mapped()
    rejects = out.rejects
    check_currency(rejects, "currency", [r["currency"] for r in records], optional=True)
    check_not_negative(rejects, "revision", [r["revision"] for r in records])
    for name in ("hour_start", "updated_at"):
        check_time(rejects, name, [r[name] for r in records])
    for name in ("units", *_HOURLY_RATIOS, *_SHARES):
        check_finite(rejects, name, [r.get(name) for r in records])
    index, kept = _kept(records, rejects)
    cols: list[list[Any]] = [
        [r["store_id"] for r in kept],
        *([r[name] or "" for r in kept] for name in ("zone_id", "tenant_id", "mall_id", "category")),
        [r["hour_start"] // 1000 for r in kept],
        [r["local_hour"] for r in kept],
        [local_date_of(r["local_hour"], r["hour_start"], r["timezone"], clock) for r in kept],
        [r["timezone"] for r in kept],
        [r["currency"] or "" for r in kept],
        *([r[name] for r in kept] for name in _HOURLY_LONGS),
        *([r[name] for r in kept] for name in _HOURLY_RATIOS),
        [list(r["quality_flags"]) for r in kept],
        [r["is_final"] for r in kept],
        [r["revision"] for r in kept],
        [r["updated_at"] for r in kept],
        [hourly_version(r["revision"], r["is_final"], r["updated_at"]) for r in kept],
        *([r.get(name) for r in kept] for name in _SHARES),
    ]
    out.columns["conversion_hourly"] = cols
    out.owners["conversion_hourly"] = index
    return out


def alert_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``alerts`` columns; a store missing from the catalogue gets UTC (an alert is never held back)."""
    out = Mapped()
    rejects = out.rejects
    for name in ("hour_start", "fired_at"):
        check_time(rejects, name, [r[name] for r in records])
    for name in ("observed", "expected"):
        check_finite(rejects, name, [r[name] for r in records])
    index, kept = _kept(records, rejects)
    out.columns["alerts"] = [
        *([r[name] for r in kept] for name in ("alert_id", "kind", "state", "severity", "store_id")),
        [r["tenant_id"] or "" for r in kept],
        [r["mall_id"] or "" for r in kept],
        [r["hour_start"] // 1000 for r in kept],
        [timezones.get(r["store_id"], "UTC") for r in kept],
        [r["observed"] for r in kept],
        [r["expected"] for r in kept],
        [r["message"] for r in kept],
        [r["fired_at"] for r in kept],
        [dict(r["details"]) for r in kept],
    ]
    out.owners["alerts"] = index
    return out


def forecast_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``forecast_hourly`` columns (the hour's time zone travels in the record)."""
    out = Mapped()
    rejects = out.rejects
    check_ids(rejects, "store_id", [r["store_id"] for r in records])
    check_currency(rejects, "currency", [r["currency"] for r in records], optional=True)
    check_not_negative(rejects, "horizon_hours", [r["horizon_hours"] for r in records])
    visitors = [r["visitors"] for r in records]
    check_finite(rejects, "visitors", visitors)
    check_not_negative(rejects, "visitors", [v if math.isfinite(v) else 0 for v in visitors])
    for name in ("hour_start", "issued_at"):
        check_time(rejects, name, [r[name] for r in records])
    index, kept = _kept(records, rejects)
    out.columns["forecast_hourly"] = [
        [r["store_id"] for r in kept],
        [r["tenant_id"] or "" for r in kept],
        [r["mall_id"] or "" for r in kept],
        [r["hour_start"] // 1000 for r in kept],
        [r["local_hour"] for r in kept],
        [local_date_of(r["local_hour"], r["hour_start"], r["timezone"], clock) for r in kept],
        [r["timezone"] for r in kept],
        [r["currency"] or "" for r in kept],
        [r["issued_at"] for r in kept],
        [r["horizon_hours"] for r in kept],
        [r["visitors"] for r in kept],
        [r["net_revenue"] for r in kept],
        [r["method"] for r in kept],
    ]
    out.owners["forecast_hourly"] = index
    return out


_OPS_NUMBERS = ("visitors", "transactions", "net_revenue", "units", "conversion", "revenue_per_m2", "staff_minutes",
                "staff_on_floor", "visitors_per_staff", "sales_per_labour_hour", "queue_minutes", "queue_mean",
                "queue_p90", "queue_max", "queue_minutes_over", "conversion_revision")  # fmt: skip
_OPS_FLOATS = ("units", "conversion", "revenue_per_m2", "staff_minutes", "staff_on_floor", "visitors_per_staff",
               "sales_per_labour_hour", "queue_mean", "queue_p90", "queue_max")  # fmt: skip


def ops_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``storeops_hourly`` columns (the hour's time zone travels in the record; ``hour_start`` in milliseconds)."""
    out = Mapped()
    rejects = out.rejects
    check_ids(rejects, "store_id", [r["store_id"] for r in records])
    check_currency(rejects, "currency", [r["currency"] for r in records], optional=True)
    check_not_negative(rejects, "revision", [r["revision"] for r in records])
    for name in ("hour_start", "updated_at"):
        check_time(rejects, name, [r[name] for r in records])
    for name in _OPS_FLOATS:
        check_finite(rejects, name, [r[name] for r in records])
    index, kept = _kept(records, rejects)
    out.columns["storeops_hourly"] = [
        [r["store_id"] for r in kept],
        [r["grain"] for r in kept],
        [r["dimension"] for r in kept],
        [r["tenant_id"] or "" for r in kept],
        [r["mall_id"] or "" for r in kept],
        [r["hour_start"] for r in kept],
        [r["local_hour"] for r in kept],
        [local_date_of(r["local_hour"], r["hour_start"], r["timezone"], clock) for r in kept],
        [r["timezone"] for r in kept],
        [r["currency"] or "" for r in kept],
        *([r[name] for r in kept] for name in _OPS_NUMBERS),
        [r["revision"] for r in kept],
        [r["updated_at"] for r in kept],
        [hourly_version(r["revision"], r["is_final"], r["updated_at"]) for r in kept],
    ]
    out.owners["storeops_hourly"] = index
    return out


def _break_minutes(shift: Plain) -> float:
    """Minutes of breaks; an open break ends with its shift (an open shift's open break counts 0)."""
    total = 0
    for b in shift["breaks"]:
        end = b["end_at"] if b["end_at"] is not None else shift["end_at"]
        total += (end if end is not None else b["start_at"]) - b["start_at"]
    return max(total / 60_000, 0.0)


def shift_columns(records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock) -> Mapped:
    """``staff_shifts`` columns; a shift of a store missing from the catalogue is a ``map`` reject."""
    out = Mapped()
    rejects = out.rejects
    for name in ("shift_id", "store_id", "staff_ref"):
        check_ids(rejects, name, [r[name] for r in records])
    for name in ("start_at", "ingested_at"):
        check_time(rejects, name, [r[name] for r in records])
    check_time(rejects, "end_at", [r["end_at"] if r["end_at"] is not None else 0 for r in records])
    zones = place(rejects, [r["store_id"] for r in records], timezones)
    index, kept = _kept(records, rejects)
    kept_zones = [zones[i] or "UTC" for i in index]
    local = clock.local_ms(kept_zones, [r["start_at"] for r in kept])
    out.columns["staff_shifts"] = [
        *([r[name] for r in kept] for name in ("shift_id", "source", "store_id", "staff_ref")),
        [r["role"] or "" for r in kept],
        [r["start_at"] for r in kept],
        [r["end_at"] for r in kept],
        [_break_minutes(r) for r in kept],
        kept_zones,
        [ms // DAY_MS for ms in local],
        [int(r["deleted"]) for r in kept],
        [r["ingested_at"] for r in kept],
    ]
    out.owners["staff_shifts"] = index
    return out


MAPPERS: dict[str, Callable[[Sequence[Plain], Mapping[str, str], LocalClock], Mapped]] = {
    POS_TICKETS: ticket_columns,
    CAMERA_COUNTS: camera_columns,
    CONVERSION_HOURLY: hourly_columns,
    ALERTS: alert_columns,
    FORECAST_HOURLY: forecast_columns,
    STAFF_SHIFTS: shift_columns,
    STOREOPS_HOURLY: ops_columns,
}


def columns_for(
    topic: str, records: Sequence[Plain], timezones: Mapping[str, str], clock: LocalClock | None = None
) -> Mapped:
    """Columns per table for a batch of decoded records of ``topic``; ``timezones`` maps store id to IANA zone."""
    mapper = MAPPERS.get(topic)
    if mapper is None:
        raise MappingError(f"topic {topic!r} has no ClickHouse table")
    return mapper(records, timezones, clock or LocalClock())


# ---- one record as rows (tools and tests) -------------------------------------------------------------


def plain_record(topic: str, record: Record) -> Plain:
    """A model as :class:`schemas.serde.PlainDecoder` would read it back: timestamps as epoch milliseconds."""
    out = record.to_avro()
    for name in TIME_FIELDS.get(topic, ()):
        out[name] = _millis(out[name])
    if topic == STAFF_SHIFTS:
        out["breaks"] = [{name: _millis(value) for name, value in b.items()} for b in out["breaks"]]
    return out


def _millis(value: datetime | None) -> int | None:
    return None if value is None else (value - EPOCH) // timedelta(milliseconds=1)


def _python_value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in MILLIS_COLUMNS:
        return EPOCH + timedelta(milliseconds=value)
    if column in SECONDS_COLUMNS:
        return EPOCH + timedelta(seconds=value)
    if column in DAYS_COLUMNS:
        return date.fromordinal(_EPOCH_ORDINAL + value)
    return value


def as_rows(table: str, columns: Sequence[Sequence[Any]]) -> list[Row]:
    """Columns of ``table`` as rows of Python values (datetimes in UTC, dates)."""
    names = [
        "updated_at" if table in MILLIS_HOUR_START and name == "hour_start" else name for name in COLUMNS[table]
    ]  # the conversion of a millisecond column
    converted = [
        [_python_value(name, v) for v in col] if name in MILLIS_COLUMNS | SECONDS_COLUMNS | DAYS_COLUMNS else col
        for name, col in zip(names, columns, strict=True)
    ]
    return list(zip(*converted, strict=True))


def rows_for(topic: str, record: Record, timezones: Mapping[str, str]) -> dict[str, list[Row]]:
    """Rows per table for one record of ``topic``: the sink's mapping, for one model.

    Raises :class:`MappingError` when the record cannot be placed and ``ValueError`` when it breaks a check
    of the contract that its model does not make (a ticket from the future).
    """
    mapped = columns_for(topic, [plain_record(topic, record)], timezones)
    if mapped.rejects:
        stage, reason = mapped.rejects[0]
        raise (MappingError if stage == "map" else ValueError)(reason)
    return {table: as_rows(table, cols) for table, cols in mapped.columns.items()}


def store_rows(catalogue: Catalogue, loaded_at: datetime) -> list[Row]:
    return [
        (s.id, s.name, s.timezone, s.area_m2, s.category, s.mall_id or "", s.tenant_id or "", s.currency, loaded_at)
        for s in catalogue.stores
    ]


def zone_rows(catalogue: Catalogue, loaded_at: datetime) -> list[Row]:
    return [(s.id, z.id, z.name or z.id, z.area_m2, loaded_at) for s in catalogue.stores for z in s.zones]


def timezones_of(catalogue: Catalogue) -> dict[str, str]:
    return {s.id: s.timezone for s in catalogue.stores}
