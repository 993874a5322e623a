"""Batch recompute of the final hourly metrics straight from raw event files (plain Python).

An independent implementation of the metric definitions in streams.accumulators (grouping with datetime
arithmetic instead of the engine's incremental state), used to check the stream's final records cell by cell
and for quick what-if numbers without a broker. Input: JSONL files of PosTicket and CameraCount in their
JSON form; duplicates (same ticket_id, same camera_id + frame_seq within a store-hour) count once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from schemas.catalogue import Catalogue
from schemas.models import CameraCount, PosTicket
from streams import availability

K = TypeVar("K", bound=tuple[Any, ...])
Cell = tuple[str, str | None, int]
"""(store_id, zone_id, hour_start epoch ms)."""


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: not JSON: {exc}") from None


def _local_hour_start(ts: datetime, tz_name: str) -> datetime:
    from zoneinfo import ZoneInfo

    local = ts.astimezone(ZoneInfo(tz_name))
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def recompute(
    catalogue: Catalogue, tickets: Iterable[dict[str, Any]], counts: Iterable[dict[str, Any]]
) -> dict[Cell, dict[str, Any]]:
    """Final metrics per store (and zone) hour; keys and values as in HourlyConversion."""
    stores = {s.id: s for s in catalogue.stores}
    cells: dict[Cell, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    seen_tickets: set[tuple[Cell, str]] = set()
    seen_frames: set[tuple[Cell, str, int]] = set()
    camera_minutes: dict[Cell, dict[str, int]] = {}
    for raw in tickets:
        t = PosTicket.model_validate(raw)
        if t.store_id not in stores or stores[t.store_id].currency_problem(t.currency) is not None:
            continue  # dead-lettered by the stream (never summed into the store's currency)
        cell: Cell = (t.store_id, None, _ms(_local_hour_start(t.occurred_at, stores[t.store_id].timezone)))
        if (cell, t.ticket_id) in seen_tickets:
            continue
        seen_tickets.add((cell, t.ticket_id))
        c = cells[cell]
        c["_frames"] += 0
        if t.channel.value != "IN_STORE":
            continue
        c["_tickets"] += 1
        c.setdefault("_currency", t.currency)
        kind = t.kind.value
        if kind in ("SALE", "VOID"):  # a VOID takes its (cancelled) sale back out: amounts are signed
            c["transactions"] += 1 if kind == "SALE" else -1
            c["voids"] += kind == "VOID"
            c["net_revenue"] += t.net_amount
            c["gross_revenue"] += t.gross_amount
            c["discount_amount"] += t.discount_amount
            c["units"] += sum(line.quantity for line in t.lines)
            if kind == "SALE":  # tender shares are over sales' payments only
                c["_paid"] += sum(p.amount for p in t.payments)
                c["cash_amount"] += sum(p.amount for p in t.payments if p.method.value == "CASH")
        elif kind == "REFUND":
            c["refunds"] += 1
            c["refund_amount"] += abs(t.net_amount)
        elif kind == "EMPLOYEE_SALE":
            c["employee_sales"] += 1
    for raw in counts:
        f = CameraCount.model_validate(raw)
        if f.store_id not in stores:
            continue
        cell = (f.store_id, f.zone_id, _ms(_local_hour_start(f.frame_ts, stores[f.store_id].timezone)))
        if (cell, f.camera_id, f.frame_seq) in seen_frames:
            continue
        seen_frames.add((cell, f.camera_id, f.frame_seq))
        c = cells[cell]
        c["visitors"] += f.entries
        c["exits"] += f.exits
        c["_frames"] += 1
        base = (cell[0], None, cell[2])
        minute = min(max((_ms(f.frame_ts) - cell[2]) // 60_000, 0), 59)
        seen_minutes = camera_minutes.setdefault(base, {})
        seen_minutes[f.camera_id] = seen_minutes.get(f.camera_id, 0) | 1 << minute
    out = {cell: _finish(cell, dict(c), catalogue) for cell, c in cells.items()}
    for cell, record in out.items():
        if cell[1] is None:
            store = stores[cell[0]]
            entrances = [c.id for c in catalogue.cameras_of(store.id) if c.zone_id is None]
            expected = availability.open_minutes(store, cell[2])
            availability.apply_to_record(record, camera_minutes.get(cell, {}), entrances, expected)
    return out


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _finish(cell: Cell, c: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    store_id, zone_id, start = cell
    store = catalogue.store(store_id)
    area = store.area_m2 if zone_id is None else next((z.area_m2 for z in store.zones if z.id == zone_id), 0.0)
    get = lambda name: c.get(name, 0)  # noqa: E731
    visitors, tx, net = int(get("visitors")), int(get("transactions")), int(get("net_revenue"))
    flags = []
    if tx and visitors and tx > visitors:
        flags.append("CONVERSION_OVER_ONE")
    if zone_id is not None:
        flags.append("ZONE_TRAFFIC_ONLY")
    else:
        if not get("_frames"):
            flags.append("NO_CAMERA_DATA")
        if not get("_tickets"):
            flags.append("NO_POS_DATA")
    local = datetime.fromtimestamp(start / 1000, tz=UTC).astimezone(store.tz)
    return {
        "store_id": store_id,
        "zone_id": zone_id,
        "hour_start": start,
        "local_hour": local.isoformat(),
        "currency": c.get("_currency") or store.currency,
        "visitors": visitors,
        "exits": int(get("exits")),
        "transactions": tx,
        "net_revenue": net,
        "gross_revenue": int(get("gross_revenue")),
        "discount_amount": int(get("discount_amount")),
        "units": float(get("units")),
        "refunds": int(get("refunds")),
        "refund_amount": int(get("refund_amount")),
        "voids": int(get("voids")),
        "employee_sales": int(get("employee_sales")),
        "cash_amount": int(get("cash_amount")),
        "conversion": _div(tx, visitors),
        "avg_ticket": _div(net, tx),
        "units_per_transaction": _div(get("units"), tx),
        "revenue_per_visitor": _div(net, visitors),
        "revenue_per_m2": _div(net, area),
        "void_rate": _div(get("voids"), get("_tickets")),
        "discount_rate": _div(get("discount_amount"), get("gross_revenue")),
        "cash_share": _div(get("cash_amount"), get("_paid")),
        "quality_flags": flags,
        "complete_share": None,  # store hours: set from the camera minutes (streams.availability)
        "pos_complete_share": None,  # the streams' view of arrivals and silences (streams.availability)
        "all_complete_share": None,
    }


COMPARED = (
    "local_hour",
    "currency",
    "visitors",
    "exits",
    "transactions",
    "net_revenue",
    "gross_revenue",
    "discount_amount",
    "units",
    "refunds",
    "refund_amount",
    "voids",
    "employee_sales",
    "cash_amount",
    "conversion",
    "avg_ticket",
    "units_per_transaction",
    "revenue_per_visitor",
    "revenue_per_m2",
    "void_rate",
    "discount_rate",
    "cash_share",
    "quality_flags",
    "complete_share",
)


def start_ms(value: Any) -> int:
    """An output record's ``hour_start`` (ISO text, datetime or epoch ms) as epoch ms."""
    if isinstance(value, str):
        return _ms(datetime.fromisoformat(value))
    if isinstance(value, datetime):
        return _ms(value)
    return int(value)


def compare_finals(
    stream: Iterable[dict[str, Any]],
    batch: Mapping[K, dict[str, Any]],
    cell_of: Callable[[dict[str, Any]], K],
    compared: Iterable[str],
    rel_tol: float,
) -> list[str]:
    """Differences between final stream records (latest revision per cell) and a batch recompute: cells on
    one side only, then each compared field that differs (floats within ``rel_tol``, list fields in order)."""
    latest: dict[K, dict[str, Any]] = {}
    for rec in stream:
        cell = cell_of(rec)
        if rec["is_final"] and (cell not in latest or rec["revision"] >= latest[cell]["revision"]):
            latest[cell] = rec
    problems = [f"{cell}: only in the batch recompute" for cell in sorted(set(batch) - set(latest), key=str)]
    problems += [f"{cell}: only in the stream" for cell in sorted(set(latest) - set(batch), key=str)]
    for cell in sorted(set(batch) & set(latest), key=str):
        for name in compared:
            a, b = latest[cell][name], batch[cell][name]
            if isinstance(a, float) and isinstance(b, float):
                same = abs(a - b) <= rel_tol * max(1.0, abs(b))
            else:
                same = list(a) == list(b) if name == "quality_flags" else a == b
            if not same:
                problems.append(f"{cell} {name}: stream {a!r} != batch {b!r}")
    return problems


def compare(stream: Iterable[dict[str, Any]], batch: dict[Cell, dict[str, Any]]) -> list[str]:
    """Differences between final stream records (latest revision per cell) and the batch recompute."""
    return compare_finals(
        stream, batch, lambda rec: (rec["store_id"], rec["zone_id"], start_ms(rec["hour_start"])), COMPARED, 1e-9
    )


BACKFILL_REVISION = 1000
"""Revision of backfilled records: above any the stream gives an hour, so ClickHouse (ReplacingMergeTree on
revision first) keeps them over the stream's records of the same hour."""


def backfill_records(
    catalogue: Catalogue, cells: dict[Cell, dict[str, Any]], updated_at_ms: int, revision: int = BACKFILL_REVISION
) -> list[dict[str, Any]]:
    """Final HourlyConversion records (Avro dicts, times as epoch ms) of recomputed cells, for `tillflow
    backfill`: hours older than the stream's closed-hour retention, recomputed from every record of them."""
    out = []
    for cell in sorted(cells, key=lambda c: (c[0], c[1] or "", c[2])):
        store = catalogue.store(cell[0])
        record = dict(cells[cell])
        record.update(
            tenant_id=store.tenant_id,
            mall_id=store.mall_id,
            category=store.category,
            timezone=store.timezone,
            is_final=True,
            revision=revision,
            updated_at=updated_at_ms,
        )
        out.append(record)
    return out


__all__ = ["BACKFILL_REVISION", "COMPARED", "backfill_records", "compare", "read_jsonl", "recompute"]
