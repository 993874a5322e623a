"""Batch recompute of the store-operations figures (staffing, queues, zones, categories) from raw files.

The second, independent implementation next to streams.batch (which gives the conversion cells it builds on):
hours by datetime arithmetic, shifts resolved to their last version before any minute is counted, queue
minutes grouped from all frames at once. Used to check the stream's ``storeops.hourly`` records cell by cell,
and to derive the alerts a clean, in-order run must raise (QUEUE_LONG over all minutes in time order,
UNDERSTAFFED over final hours in time order).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.catalogue import UNMAPPED_ZONE, Catalogue
from schemas.models import CameraCount, PosTicket
from schemas.storeops import StaffShift
from streams import rules
from streams.batch import Cell, compare_finals, recompute
from streams.batch import start_ms as record_start_ms
from streams.storeops import UNCATEGORISED, UNDERSTAFFED, OpsConfig, new_queue_run, queue_step, understaffed

OpsCell = tuple[str, str, str, int]
"""(store_id, grain, dimension, hour_start epoch ms)."""


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _hour(ts: datetime, tz: Any) -> datetime:
    return ts.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC)


def _latest_shifts(shifts: Iterable[dict[str, Any]]) -> dict[str, dict[str, StaffShift]]:
    """store -> shift_id -> the shift's last version (greatest ingested_at; the later record on a tie)."""
    out: dict[str, dict[str, StaffShift]] = defaultdict(dict)
    for raw in shifts:
        s = StaffShift.model_validate(raw)
        old = out[s.store_id].get(s.shift_id)
        if old is None or s.ingested_at >= old.ingested_at:
            out[s.store_id][s.shift_id] = s
    return {store: {k: v for k, v in by_id.items() if not v.deleted} for store, by_id in out.items()}


def _minutes_on_floor(s: StaffShift, lo: datetime, hi: datetime, cfg: OpsConfig) -> float:
    end = s.end_at or min(hi, s.start_at + timedelta(milliseconds=cfg.open_shift_max_ms))
    a, b = max(s.start_at, lo), min(end, hi)
    if b <= a:
        return 0.0
    worked = (b - a).total_seconds()
    for brk in s.breaks:
        bend = brk.end_at or end
        overlap = (min(b, bend) - max(a, brk.start_at)).total_seconds()
        worked -= max(overlap, 0.0)
    return max(worked, 0.0) / 60


_NOT_STORE: dict[str, Any] = {
    "staff_minutes": 0.0, "staff_on_floor": None, "visitors_per_staff": None, "sales_per_labour_hour": None,
    "queue_minutes": 0, "queue_mean": None, "queue_p90": None, "queue_max": None, "queue_minutes_over": 0,
}  # fmt: skip
"""Staffing and queue figures of zone and category rows (they belong to the store row)."""


def recompute_ops(
    catalogue: Catalogue,
    tickets: list[dict[str, Any]],
    counts: list[dict[str, Any]],
    shifts: Iterable[dict[str, Any]],
    cfg: OpsConfig | None = None,
) -> dict[OpsCell, dict[str, Any]]:
    """Final OpsHourly figures per (store, grain, dimension, hour); keys and values as in the contract."""
    cfg = cfg or OpsConfig()
    stores = {s.id: s for s in catalogue.stores}
    queue_cams = catalogue.queue_cameras()
    conversion = recompute(catalogue, tickets, counts)
    zone_sales: dict[Cell, dict[str, list[float]]] = defaultdict(dict)
    cat_sales: dict[Cell, dict[str, list[float]]] = defaultdict(dict)
    seen: set[tuple[Cell, str]] = set()
    for raw in tickets:
        t = PosTicket.model_validate(raw)
        store = stores.get(t.store_id)
        if store is None:
            continue
        cell: Cell = (t.store_id, None, _ms(_hour(t.occurred_at, store.tz)))
        if (cell, t.ticket_id) in seen:
            continue
        seen.add((cell, t.ticket_id))
        if t.channel.value != "IN_STORE" or t.kind.value not in ("SALE", "VOID"):
            continue
        sign = 1 if t.kind.value == "SALE" else -1
        zones_hit: set[str] = set()
        cats_hit: set[str] = set()
        for line in t.lines:
            zone = next((z.id for z in store.zones if line.category and line.category in z.categories), UNMAPPED_ZONE)
            cat = line.category or UNCATEGORISED
            for key, target, hit in ((zone, zone_sales[cell], zones_hit), (cat, cat_sales[cell], cats_hit)):
                c = target.setdefault(key, [0, 0, 0.0])
                c[1] += line.net_amount
                c[2] += line.quantity
                hit.add(key)
        for key in zones_hit:
            zone_sales[cell][key][0] += sign
        for key in cats_hit:
            cat_sales[cell][key][0] += sign
    # Queue: frames of queue cameras, once per (camera, seq) within an hour; per camera per minute the mean.
    frames: dict[tuple[str, int], dict[str, dict[int, list[float]]]] = defaultdict(lambda: defaultdict(dict))
    seen_f: set[tuple[str, int, str, int]] = set()
    for raw in counts:
        if raw.get("camera_id") not in queue_cams:
            continue
        f = CameraCount.model_validate(raw)
        store = stores.get(f.store_id)
        if store is None:
            continue
        start = _hour(f.frame_ts, store.tz)
        if (f.store_id, _ms(start), f.camera_id, f.frame_seq) in seen_f:
            continue
        seen_f.add((f.store_id, _ms(start), f.camera_id, f.frame_seq))
        minute = min(max(int((f.frame_ts - start).total_seconds() // 60), 0), 59)
        c = frames[(f.store_id, _ms(start))][f.camera_id].setdefault(minute, [0.0, 0])
        c[0] += f.people_in_frame
        c[1] += 1
    queue_len: dict[tuple[str, int], dict[int, float]] = {}
    for hour_key, cams in frames.items():
        per_minute: dict[int, float] = defaultdict(float)
        for minutes in cams.values():
            for m, (total, n) in minutes.items():
                per_minute[m] += total / n
        queue_len[hour_key] = dict(per_minute)
    latest = _latest_shifts(shifts)
    out: dict[OpsCell, dict[str, Any]] = {}
    for (store_id, zone_id, start_ms), conv in conversion.items():
        if zone_id is not None:
            continue
        store = stores[store_id]
        lo = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
        hi = lo + timedelta(hours=1)
        mins = 0.0
        for s in latest.get(store_id, {}).values():
            if store.floor_roles is not None and s.role not in store.floor_roles:
                continue
            mins += _minutes_on_floor(s, lo, hi, cfg)
        q = sorted(queue_len.get((store_id, start_ms), {}).values())
        visitors, tx, net = conv["visitors"], conv["transactions"], conv["net_revenue"]
        hours_on = mins / 60
        common = {"local_hour": conv["local_hour"], "currency": conv["currency"], **_NOT_STORE}
        out[(store_id, "STORE", "", start_ms)] = {
            **common,
            "visitors": visitors,
            "transactions": tx,
            "net_revenue": net,
            "units": conv["units"],
            "conversion": conv["conversion"],
            "revenue_per_m2": net / store.area_m2,
            "staff_minutes": mins,
            "staff_on_floor": hours_on if mins > 0 else None,
            "visitors_per_staff": visitors / hours_on if mins > 0 else None,
            "sales_per_labour_hour": net / hours_on if mins > 0 else None,
            "queue_minutes": len(q),
            "queue_mean": sum(q) / len(q) if q else None,
            "queue_p90": q[math.ceil(0.9 * len(q)) - 1] if q else None,
            "queue_max": q[-1] if q else None,
            "queue_minutes_over": sum(1 for v in q if v > store.queue_alert.people),
        }
        sales = zone_sales.get((store_id, None, start_ms), {})
        zone_ids = [z.id for z in store.zones] + ([UNMAPPED_ZONE] if UNMAPPED_ZONE in sales else [])
        for zone in zone_ids:
            ztx, znet, zunits = sales.get(zone, [0, 0, 0.0])
            zcell = conversion.get((store_id, zone, start_ms))
            zv = zcell["visitors"] if zcell else None
            area = next((z.area_m2 for z in store.zones if z.id == zone), None)
            out[(store_id, "ZONE", zone, start_ms)] = {
                **common,
                "visitors": zv,
                "transactions": int(ztx),
                "net_revenue": int(znet),
                "units": float(zunits),
                "conversion": ztx / zv if zv else None,
                "revenue_per_m2": znet / area if area else None,
            }
        for cat, (ctx, cnet, cunits) in cat_sales.get((store_id, None, start_ms), {}).items():
            out[(store_id, "CATEGORY", cat, start_ms)] = {
                **common,
                "visitors": visitors,
                "transactions": int(ctx),
                "net_revenue": int(cnet),
                "units": float(cunits),
                "conversion": ctx / visitors if visitors else None,
                "revenue_per_m2": None,
            }
    return out


OPS_COMPARED = (
    "local_hour", "currency", "visitors", "transactions", "net_revenue", "units", "conversion", "revenue_per_m2",
    "staff_minutes", "staff_on_floor", "visitors_per_staff", "sales_per_labour_hour", "queue_minutes",
    "queue_mean", "queue_p90", "queue_max", "queue_minutes_over",
)  # fmt: skip


def compare_ops(stream: Iterable[dict[str, Any]], batch: dict[OpsCell, dict[str, Any]]) -> list[str]:
    """Differences between the stream's storeops records (latest revision per cell) and the batch recompute."""

    def cell_of(rec: dict[str, Any]) -> OpsCell:
        grain = rec["grain"] if isinstance(rec["grain"], str) else rec["grain"].value
        return (rec["store_id"], grain, rec["dimension"], record_start_ms(rec["hour_start"]))

    return compare_finals(stream, batch, cell_of, OPS_COMPARED, 1e-6)


def batch_alerts(
    catalogue: Catalogue, ops: dict[OpsCell, dict[str, Any]], counts: list[dict[str, Any]], cfg: OpsConfig | None = None
) -> list[dict[str, Any]]:
    """UNDERSTAFFED and QUEUE_LONG as an in-order run raises them (FIRING and RESOLVED records)."""
    cfg = cfg or OpsConfig()
    out: list[dict[str, Any]] = []
    for store in catalogue.stores:
        hours = sorted((c[3], row) for c, row in ops.items() if c[0] == store.id and c[1] == "STORE")
        history: list[list[float]] = []
        states: dict[str, str] = {}
        for start, row in hours:
            history = [h for h in history if h[0] >= start - cfg.history_days * 24 * 3_600_000]
            own = [h[1:] for h in history]
            finding = understaffed(row["visitors"], row["transactions"], row["staff_on_floor"], own, cfg)
            out += rules.reconcile(
                states,
                store_id=store.id,
                hour_start_ms=start,
                evaluated=[UNDERSTAFFED],
                findings=[finding] if finding else [],
                fired_at_ms=start + 3_600_000,
                tenant_id=store.tenant_id,
                mall_id=store.mall_id,
            )
            if row["visitors_per_staff"] is not None and row["visitors"] >= cfg.understaffed_min_visitors:
                history.append([start, row["visitors_per_staff"], row["conversion"]])
        # QUEUE_LONG: per minute the sum over queue cameras of each camera's mean.
        cams = {c.id for c in catalogue.cameras_of(store.id) if c.role == "queue"}
        per: dict[int, dict[str, list[float]]] = defaultdict(dict)
        seen: set[tuple[str, int]] = set()
        for raw in counts:
            if raw.get("camera_id") in cams and (raw["camera_id"], raw["frame_seq"]) not in seen:
                seen.add((raw["camera_id"], raw["frame_seq"]))
                ts = _ms(CameraCount.model_validate(raw).frame_ts)
                c = per[ts // 60_000 * 60_000].setdefault(raw["camera_id"], [0.0, 0])
                c[0] += raw["people_in_frame"]
                c[1] += 1
        if not per:
            continue
        run = new_queue_run()
        first, last = min(per), max(per)
        minute = first
        while minute <= last:
            value = sum(t / n for t, n in per[minute].values()) if minute in per else None
            record = queue_step(run, minute, value, store.queue_alert.people, store.queue_alert.minutes, store)
            if record is not None:
                out.append(record)
            minute += 60_000
    return out


__all__ = ["OPS_COMPARED", "OpsCell", "batch_alerts", "compare_ops", "recompute_ops"]
