"""Store operations per store-hour: staffing against traffic, queues at the tills, zones and categories.

Pure rules (no I/O, explicit timestamps in epoch milliseconds):

- **Zones and categories.** A ticket line belongs to the zone whose ``categories`` list its category
  (``unmapped`` when none does, or when the line has no category). Zone revenue is the sum of the line net
  amounts of in-store SALE tickets less VOIDs (signed amounts, as in conversion); a zone's (or category's)
  transactions are the sales with at least one line in it, less the voids with one. Zone conversion divides
  by the zone camera's visitors (only where a zone camera counts the zone); category conversion by the store's
  visitors: the share of the hour's visitors whose ticket had a line in the category.
- **Staffing.** Staff-minutes on the floor in an hour are the overlaps of the store's shifts with the hour,
  less their breaks (only roles in the store's ``floor_roles`` when it lists them). An open shift counts up
  to the end of the hour, for at most ``open_shift_max_ms`` after it started. ``staff_on_floor`` is
  staff-minutes / 60 (a minutes-weighted headcount); visitors per staff member and sales per labour hour
  divide the hour's visitors and net revenue (from the final ``conversion.hourly`` record) by it.
- **Queues.** Cameras with role ``queue`` report the people waiting (``people_in_frame``). A minute's queue
  length is the sum over the store's queue cameras of each camera's mean over its frames in that minute; an
  hour's figures are over the minutes with data: mean, p90 (nearest rank), max and the minutes over the
  store's ``queue_alert.people``.

Alerts (documented in docs/storeops.md):

- ``UNDERSTAFFED`` (per final store-hour): visitors per staff member far above the store's own range (a
  modified z-score against the median and MAD of its earlier final hours, at least ``understaffed_z``, and at
  least ``understaffed_ratio`` times the median) while conversion is below its own median by at least
  ``understaffed_conv_drop`` and the sales count is improbable under the median conversion (Poisson lower
  tail under ``understaffed_p``). All three conditions together keep ordinary noise silent.
- ``QUEUE_LONG`` (per incident): the queue stays over ``people`` for ``minutes`` consecutive complete minutes;
  RESOLVED at the first complete minute at or under ``people`` (a minute without queue data counts as clear).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, TypedDict

from schemas.catalogue import UNMAPPED_ZONE, Catalogue, Store
from streams import alerts as rules
from streams.alerts import Finding, poisson_cdf
from streams.dedupe import interval_add
from streams.hours import HOUR_MS, hour_start, local_hour_iso

MINUTE_MS = 60_000
UNDERSTAFFED = "UNDERSTAFFED"
QUEUE_LONG = "QUEUE_LONG"
UNCATEGORISED = "uncategorised"
"""The category of ticket lines that carry none (category grain)."""

TICKET = "ticket"
FRAME = "frame"
SHIFT = "shift"
CONVERSION = "conversion"


@dataclass(frozen=True)
class OpsConfig:
    queue_grace_ms: int = 60_000
    """A queue minute is evaluated for QUEUE_LONG once queue frames this much past its end arrived."""
    open_shift_max_ms: int = 16 * HOUR_MS
    """An open shift (no end yet) counts for at most this long after its start (a forgotten clock-out)."""
    hour_retention_ms: int = 48 * HOUR_MS
    """Hours (and their dedupe ids) kept this long behind the newest event of the store, for corrections."""
    history_days: int = 35
    understaffed_z: float = 3.0
    understaffed_ratio: float = 1.5
    understaffed_conv_drop: float = 0.2
    understaffed_p: float = 0.01
    understaffed_min_history: int = 8
    understaffed_min_visitors: int = 20
    critical_ratio: float = 2.5
    """UNDERSTAFFED is CRITICAL when visitors per staff reach this multiple of the store's median."""


# -- pure figures --


class Interval(TypedDict):
    start: int
    end: int | None


class ShiftState(TypedDict):
    start: int
    end: int | None
    role: str | None
    breaks: list[list[int | None]]
    version: int


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def shift_minutes(shift: ShiftState, start_ms: int, end_ms: int, open_shift_max_ms: int) -> float:
    """Minutes of ``shift`` on the floor within [start_ms, end_ms): its overlap less the overlap of its breaks."""
    s = shift["start"]
    e = shift["end"] if shift["end"] is not None else min(end_ms, s + open_shift_max_ms)
    lo, hi = max(s, start_ms), min(e, end_ms)
    if hi <= lo:
        return 0.0
    worked = hi - lo
    for b0, b1 in shift["breaks"]:
        if b0 is None:
            continue
        worked -= _overlap(lo, hi, b0, b1 if b1 is not None else e)
    return max(worked, 0) / MINUTE_MS


def staff_minutes(
    shifts: Iterable[ShiftState], start_ms: int, end_ms: int, floor_roles: Sequence[str] | None, open_max_ms: int
) -> float:
    total = 0.0
    for shift in shifts:
        if floor_roles is not None and shift["role"] not in floor_roles:
            continue
        total += shift_minutes(shift, start_ms, end_ms, open_max_ms)
    return total


def queue_minute_lengths(per_camera: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[int, float]:
    """Minute of the hour -> queue length: per camera the mean of its frames in the minute, summed over cameras."""
    out: dict[int, float] = {}
    for minutes in per_camera.values():
        for minute, (total, frames) in minutes.items():
            if frames:
                out[int(minute)] = out.get(int(minute), 0.0) + total / frames
    return out


@dataclass(frozen=True)
class QueueStats:
    minutes: int
    mean: float | None
    p90: float | None
    max: float | None
    over: int


def queue_stats(lengths: Iterable[float], people: float) -> QueueStats:
    """Mean, p90 (nearest rank), max and minutes over ``people`` of the minutes with queue data."""
    values = sorted(lengths)
    n = len(values)
    if not n:
        return QueueStats(0, None, None, None, 0)
    p90 = values[max(math.ceil(0.9 * n) - 1, 0)]
    return QueueStats(n, sum(values) / n, p90, values[-1], sum(1 for v in values if v > people))


def attribute_lines(
    ticket: Mapping[str, Any], store: Store
) -> tuple[int, dict[str, list[float]], dict[str, list[float]]]:
    """(sign, zone -> [net, units], category -> [net, units]) of an in-store SALE (+1) or VOID (-1) ticket;
    sign 0 for tickets that are not store sales (other kinds and channels)."""
    if ticket.get("channel", "IN_STORE") != "IN_STORE" or ticket["kind"] not in ("SALE", "VOID"):
        return 0, {}, {}
    sign = 1 if ticket["kind"] == "SALE" else -1
    zones: dict[str, list[float]] = {}
    cats: dict[str, list[float]] = {}
    for line in ticket.get("lines") or ():
        category = line.get("category") or None
        for key, target in ((store.zone_of_category(category), zones), (category or UNCATEGORISED, cats)):
            cell = target.setdefault(key, [0, 0.0])
            cell[0] += line["net_amount"]
            cell[1] += line["quantity"]
    return sign, zones, cats


def understaffed(
    visitors: int,
    transactions: int,
    staff_on_floor: float | None,
    history: Sequence[Sequence[float]],
    cfg: OpsConfig,
) -> Finding | None:
    """UNDERSTAFFED for one final store-hour against the store's earlier hours ``[vps, conversion]``."""
    if not staff_on_floor or visitors < cfg.understaffed_min_visitors:
        return None
    if len(history) < cfg.understaffed_min_history:
        return None
    vps = visitors / staff_on_floor
    vps_hist = [h[0] for h in history]
    center = median(vps_hist)
    mad = median(abs(v - center) for v in vps_hist)
    scale = max(1.4826 * mad, 0.05 * center, 1e-9)
    z = (vps - center) / scale
    if z < cfg.understaffed_z or vps < cfg.understaffed_ratio * center:
        return None
    conv_ref = median(h[1] for h in history)
    conversion = transactions / visitors
    if conv_ref <= 0 or conversion > conv_ref * (1 - cfg.understaffed_conv_drop):
        return None
    p = poisson_cdf(max(transactions, 0), visitors * conv_ref)
    if p >= cfg.understaffed_p:
        return None
    severity = "CRITICAL" if vps >= cfg.critical_ratio * center else "WARNING"
    return Finding(
        UNDERSTAFFED,
        severity,
        round(vps, 6),
        round(center, 6),
        f"{vps:.1f} visitors per staff member (usually {center:.1f}) with conversion {conversion:.1%} "
        f"(usually {conv_ref:.1%})",
        {
            "staff_on_floor": f"{staff_on_floor:.2f}",
            "z": f"{z:.2f}",
            "conversion": f"{conversion:.4f}",
            "conversion_baseline": f"{conv_ref:.4f}",
        },
    )


class QueueRun(TypedDict):
    at: int
    """Start of the next minute to evaluate (0: nothing seen yet)."""
    since: int
    """Start of the current run of minutes over the threshold (0: none)."""
    minutes: int
    peak: float
    total: float
    firing: str
    """alert_id of the FIRING incident, '' when none."""


def new_queue_run() -> QueueRun:
    return {"at": 0, "since": 0, "minutes": 0, "peak": 0.0, "total": 0.0, "firing": ""}


def queue_step(
    run: QueueRun, minute_ms: int, length: float | None, people: float, minutes: int, store: Store
) -> dict[str, Any] | None:
    """Advance QUEUE_LONG by one complete minute (``length`` None: no data); the alert record to emit, if any."""
    run["at"] = minute_ms + MINUTE_MS
    if length is not None and length > people:
        if not run["since"]:
            run["since"], run["minutes"], run["peak"], run["total"] = minute_ms, 0, 0.0, 0.0
        run["minutes"] += 1
        run["peak"] = max(run["peak"], length)
        run["total"] += length
        if run["minutes"] == minutes and not run["firing"]:
            aid = rules.alert_id(QUEUE_LONG, store.id, run["since"])
            run["firing"] = aid
            finding = Finding(
                QUEUE_LONG,
                "WARNING",
                round(run["total"] / run["minutes"], 6),
                float(people),
                f"queue over {people:g} people for {minutes} minutes (peak {run['peak']:g})",
                {"since": str(run["since"]), "minutes": str(run["minutes"]), "peak": f"{run['peak']:g}"},
            )
            return _queue_record(aid, finding, "FIRING", store, run["since"], minute_ms + MINUTE_MS)
        return None
    emitted = None
    if run["firing"]:
        finding = Finding(
            QUEUE_LONG,
            "INFO",
            length,
            float(people),
            f"queue cleared after {run['minutes']} minutes (peak {run['peak']:g})",
            {"since": str(run["since"]), "minutes": str(run["minutes"]), "peak": f"{run['peak']:g}"},
        )
        emitted = _queue_record(run["firing"], finding, "RESOLVED", store, run["since"], minute_ms)
    run["since"], run["minutes"], run["peak"], run["total"], run["firing"] = 0, 0, 0.0, 0.0, ""
    return emitted


def _queue_record(aid: str, f: Finding, state: str, store: Store, since: int, at: int) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "kind": f.kind,
        "state": state,
        "severity": f.severity,
        "store_id": store.id,
        "tenant_id": store.tenant_id,
        "mall_id": store.mall_id,
        "hour_start": hour_start(since, store.timezone),
        "observed": f.observed,
        "expected": f.expected,
        "message": f.message,
        "fired_at": at,
        "details": dict(f.details),
    }


# -- rows --


def _ratio(num: float, den: float | None) -> float | None:
    return num / den if den else None


def ops_rows(
    store: Store,
    start: int,
    *,
    conversion: Mapping[str, Any],
    zones: Mapping[str, Sequence[float]],
    categories: Mapping[str, Sequence[float]],
    zone_visitors: Mapping[str, int],
    staff_mins: float,
    queue: QueueStats,
    revision: int,
    updated_at_ms: int,
) -> list[dict[str, Any]]:
    """The OpsHourly records (Avro dicts, epoch-ms times) of one final store-hour: store, zones, categories.

    ``zones``/``categories``: key -> [transactions, net, units]; every catalogue zone gets a row, ``unmapped``
    only when lines landed there.
    """
    visitors = int(conversion["visitors"])
    tx, net = int(conversion["transactions"]), int(conversion["net_revenue"])
    on_floor = staff_mins / 60 if staff_mins > 0 else None
    base = {
        "store_id": store.id,
        "tenant_id": store.tenant_id,
        "mall_id": store.mall_id,
        "hour_start": start,
        "local_hour": local_hour_iso(start, store.timezone),
        "timezone": store.timezone,
        "currency": conversion.get("currency") or store.currency,
        "staff_minutes": 0.0,
        "staff_on_floor": None,
        "visitors_per_staff": None,
        "sales_per_labour_hour": None,
        "queue_minutes": 0,
        "queue_mean": None,
        "queue_p90": None,
        "queue_max": None,
        "queue_minutes_over": 0,
        "conversion_revision": int(conversion.get("revision", 0)),
        "is_final": True,
        "revision": revision,
        "updated_at": updated_at_ms,
    }
    rows = [
        {
            **base,
            "grain": "STORE",
            "dimension": "",
            "visitors": visitors,
            "transactions": tx,
            "net_revenue": net,
            "units": float(conversion.get("units", 0.0)),
            "conversion": _ratio(tx, visitors),
            "revenue_per_m2": _ratio(net, store.area_m2),
            "staff_minutes": staff_mins,
            "staff_on_floor": on_floor,
            "visitors_per_staff": _ratio(visitors, on_floor),
            "sales_per_labour_hour": _ratio(net, on_floor),
            "queue_minutes": queue.minutes,
            "queue_mean": queue.mean,
            "queue_p90": queue.p90,
            "queue_max": queue.max,
            "queue_minutes_over": queue.over,
        }
    ]
    zone_ids = [z.id for z in store.zones] + ([UNMAPPED_ZONE] if UNMAPPED_ZONE in zones else [])
    for zone_id in zone_ids:
        ztx, znet, zunits = zones.get(zone_id, (0, 0, 0.0))
        zv = zone_visitors.get(zone_id)
        area = next((z.area_m2 for z in store.zones if z.id == zone_id), None)
        rows.append(
            {
                **base,
                "grain": "ZONE",
                "dimension": zone_id,
                "visitors": zv,
                "transactions": int(ztx),
                "net_revenue": int(znet),
                "units": float(zunits),
                "conversion": _ratio(ztx, zv),
                "revenue_per_m2": _ratio(znet, area),
            }
        )
    for category in sorted(categories):
        ctx, cnet, cunits = categories[category]
        rows.append(
            {
                **base,
                "grain": "CATEGORY",
                "dimension": category,
                "visitors": visitors,
                "transactions": int(ctx),
                "net_revenue": int(cnet),
                "units": float(cunits),
                "conversion": _ratio(ctx, visitors),
                "revenue_per_m2": None,
            }
        )
    return rows


# -- the incremental engine --


class OpsHour(TypedDict):
    store: str
    start: int
    seen_t: dict[str, int]
    zones: dict[str, list[float]]
    """zone -> [transactions, net, units]"""
    cats: dict[str, list[float]]
    q: dict[str, dict[str, list[float]]]
    """queue camera -> minute of the hour -> [sum of people, frames]"""
    seen_q: dict[str, list[list[int]]]
    conv: dict[str, Any] | None
    """The final conversion.hourly record of the store-hour (the fields used)."""
    zone_v: dict[str, list[int]]
    """zone -> [visitors, revision] from final zone records of conversion.hourly"""
    rev: int
    """Revision of the last emission (-1: never emitted)."""
    dirty: bool


class OpsStore(TypedDict):
    shifts: dict[str, ShiftState]
    hours: list[int]
    """Starts of the hours held in state for this store."""
    history: list[list[float]]
    """[hour start, visitors per staff, conversion] of final hours (UNDERSTAFFED's own range)."""
    alerts: dict[str, str]
    queue: QueueRun
    newest: int
    """End of the newest hour with a final conversion record: retention counts back from here, so inputs read
    ahead of the conversion stage (a replay) are kept until their hours are final."""
    newest_q: int
    shifts_seen: int
    """Newest ``ingested_at`` of the store's shift records: staffing is known up to here."""
    pending: list[int]
    """Final hours waiting for UNDERSTAFFED until ``shifts_seen`` passes their end."""


@dataclass
class OpsOutput:
    records: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    rejects: list[tuple[int, str]]
    duplicates: int = 0


def _ms(value: Any) -> int:
    return value if isinstance(value, int) else int(value.timestamp() * 1000)


def ops_key(store_id: str, start: int) -> str:
    return f"{store_id}|{start}"


class OpsEngine:
    """Applies batches of (TICKET | FRAME | SHIFT | CONVERSION, decoded record) of one partition.

    Figures of a store-hour are emitted once its final ``conversion.hourly`` record arrived (the same hours,
    closing and corrections as conversion); anything that changes a final hour afterwards (a late ticket, a
    shift clocked out, a corrected conversion) emits it again with a higher revision.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        config: OpsConfig,
        hours: dict[str, OpsHour] | Any,
        stores: dict[str, OpsStore] | Any,
    ) -> None:
        self.catalogue = catalogue
        self.cfg = config
        self.hours = hours
        self.stores = stores
        self.by_id = {s.id: s for s in catalogue.stores}
        self.queue_cams = catalogue.queue_cameras()

    def _store(self, cache: dict[str, OpsStore], store_id: str) -> OpsStore:
        st = cache.get(store_id)
        if st is None:
            st = self.stores.get(store_id)
            if st is None:
                st = {
                    "shifts": {},
                    "hours": [],
                    "history": [],
                    "alerts": {},
                    "queue": new_queue_run(),
                    "newest": 0,
                    "newest_q": 0,
                    "shifts_seen": 0,
                    "pending": [],
                }
            cache[store_id] = st
        return st

    def _hour(self, touched: dict[str, OpsHour], st: OpsStore, store_id: str, start: int) -> OpsHour:
        key = ops_key(store_id, start)
        acc = touched.get(key) or self.hours.get(key)
        if acc is None:
            acc = {
                "store": store_id,
                "start": start,
                "seen_t": {},
                "zones": {},
                "cats": {},
                "q": {},
                "seen_q": {},
                "conv": None,
                "zone_v": {},
                "rev": -1,
                "dirty": False,
            }
            if start not in st["hours"]:
                st["hours"].append(start)
                st["hours"].sort()
        touched[key] = acc
        return acc

    def apply(self, events: Iterable[tuple[str, dict[str, Any]]], now_ms: int) -> OpsOutput:
        out = OpsOutput([], [], [])
        touched: dict[str, OpsHour] = {}
        stores: dict[str, OpsStore] = {}
        for i, (kind, rec) in enumerate(events):
            store = self.by_id.get(rec["store_id"])
            if store is None:
                out.rejects.append((i, f"store {rec['store_id']!r} is not in the catalogue"))
                continue
            st = self._store(stores, store.id)
            if kind == SHIFT:
                self._shift(store, st, rec, touched)
                continue
            ts = _ms(rec["hour_start"] if kind == CONVERSION else rec["occurred_at" if kind == TICKET else "frame_ts"])
            start = hour_start(ts, store.timezone)
            if kind == FRAME and rec["camera_id"] not in self.queue_cams:
                continue  # visitors come from conversion.hourly; only queue cameras matter here
            if start + HOUR_MS + self.cfg.hour_retention_ms < st["newest"] and start not in st["hours"]:
                hours = self.cfg.hour_retention_ms // HOUR_MS
                out.rejects.append((i, f"hour {start} is older than the {hours} h retention of store operations"))
                continue
            acc = self._hour(touched, st, store.id, start)
            if kind == TICKET:
                if not self._ticket(acc, store, rec):
                    out.duplicates += 1
                    continue
            elif kind == FRAME:
                if not self._frame(acc, rec, ts, start):
                    out.duplicates += 1
                    continue
                st["newest_q"] = max(st["newest_q"], ts)
            else:
                self._conversion(acc, rec)
                if rec.get("is_final"):  # a live update of a later hour must not age out hours not final yet
                    st["newest"] = max(st["newest"], start + HOUR_MS)
            if acc["conv"] is not None:
                acc["dirty"] = True
        for store_id, st in stores.items():
            store = self.by_id[store_id]
            out.alerts += self._queue_alerts(store, st, touched)
        for acc in sorted(touched.values(), key=lambda a: a["start"]):
            if acc["dirty"] and acc["conv"] is not None:
                store = self.by_id[acc["store"]]
                st = self._store(stores, store.id)
                out.records += self._emit(acc, store, st, now_ms)
        for store_id, st in stores.items():
            if st["pending"]:
                out.alerts += self._evaluate(self.by_id[store_id], st, touched)
        for store_id, st in stores.items():
            self._prune(store_id, st, touched)
        for key, acc in touched.items():
            self.hours[key] = acc
        for store_id, st in stores.items():
            self.stores[store_id] = st
        return out

    # -- inputs --

    @staticmethod
    def _ticket(acc: OpsHour, store: Store, rec: dict[str, Any]) -> bool:
        tid = rec["ticket_id"]
        if tid in acc["seen_t"]:
            return False
        acc["seen_t"][tid] = 1
        sign, zones, cats = attribute_lines(rec, store)
        for target, parts in ((acc["zones"], zones), (acc["cats"], cats)):
            for key, (net, units) in parts.items():
                cell = target.setdefault(key, [0, 0, 0.0])
                cell[0] += sign
                cell[1] += net
                cell[2] += units
        return True

    @staticmethod
    def _frame(acc: OpsHour, rec: dict[str, Any], ts: int, start: int) -> bool:
        cam = rec["camera_id"]
        intervals = acc["seen_q"].setdefault(cam, [])
        if not interval_add(intervals, rec["frame_seq"]):
            return False
        minute = str(min(max((ts - start) // MINUTE_MS, 0), 59))
        cell = acc["q"].setdefault(cam, {}).setdefault(minute, [0.0, 0])
        cell[0] += rec["people_in_frame"]
        cell[1] += 1
        return True

    @staticmethod
    def _conversion(acc: OpsHour, rec: dict[str, Any]) -> None:
        if not rec.get("is_final"):
            return
        rev = int(rec.get("revision", 0))
        if rec.get("zone_id") is not None:
            current = acc["zone_v"].get(rec["zone_id"])
            if current is None or rev >= current[1]:
                acc["zone_v"][rec["zone_id"]] = [int(rec["visitors"]), rev]
            return
        if acc["conv"] is None or rev >= int(acc["conv"]["revision"]):
            acc["conv"] = {
                "visitors": int(rec["visitors"]),
                "transactions": int(rec["transactions"]),
                "net_revenue": int(rec["net_revenue"]),
                "units": float(rec.get("units") or 0.0),
                "currency": rec.get("currency"),
                "revision": rev,
            }

    def _shift(self, store: Store, st: OpsStore, rec: dict[str, Any], touched: dict[str, OpsHour]) -> None:
        sid = rec["shift_id"]
        version = _ms(rec["ingested_at"])
        st["shifts_seen"] = max(st["shifts_seen"], version)
        old = st["shifts"].get(sid)
        if old is not None and old["version"] > version:
            return  # an older version of the shift arrived after a newer one
        new: ShiftState | None = None
        if not rec.get("deleted"):
            new = {
                "start": _ms(rec["start_at"]),
                "end": _ms(rec["end_at"]) if rec.get("end_at") is not None else None,
                "role": rec.get("role"),
                "breaks": [
                    [_ms(b["start_at"]), _ms(b["end_at"]) if b.get("end_at") is not None else None]
                    for b in rec.get("breaks") or ()
                ],
                "version": version,
            }
            st["shifts"][sid] = new
        elif old is not None:
            st["shifts"][sid] = {**old, "start": 0, "end": 0, "version": version}  # a tombstone
        for shift in (old, new):
            if shift is None:
                continue
            lo = shift["start"]
            hi = shift["end"] if shift["end"] is not None else lo + self.cfg.open_shift_max_ms
            for start in st["hours"]:
                if start < hi and start + HOUR_MS > lo:
                    acc = self._hour(touched, st, store.id, start)
                    if acc["conv"] is not None:
                        acc["dirty"] = True

    # -- outputs --

    def _emit(self, acc: OpsHour, store: Store, st: OpsStore, now_ms: int) -> list[dict[str, Any]]:
        conv = acc["conv"]
        assert conv is not None
        start = acc["start"]
        mins = self._staff(store, st, start)
        queue = queue_stats(queue_minute_lengths(acc["q"]).values(), store.queue_alert.people)
        acc["rev"] += 1
        acc["dirty"] = False
        rows = ops_rows(
            store,
            start,
            conversion=conv,
            zones=acc["zones"],
            categories=acc["cats"],
            zone_visitors={z: v[0] for z, v in acc["zone_v"].items()},
            staff_mins=mins,
            queue=queue,
            revision=acc["rev"],
            updated_at_ms=now_ms,
        )
        if start not in st["pending"]:
            st["pending"].append(start)
            st["pending"].sort()
        return rows

    def _evaluate(self, store: Store, st: OpsStore, touched: dict[str, OpsHour]) -> list[dict[str, Any]]:
        """UNDERSTAFFED for the final hours whose staffing is known: the shift feed passed their end.

        Shifts arrive on their own feed (clock-in, clock-out), so an hour closed by the tickets and counts may
        not have all of its shifts yet; judging it then would page on missing staff. Hours wait in ``pending``
        until a shift record ingested after the hour's end arrived, and are evaluated oldest first.
        """
        emitted: list[dict[str, Any]] = []
        waiting = []
        for start in st["pending"]:
            acc = touched.get(ops_key(store.id, start)) or self.hours.get(ops_key(store.id, start))
            if acc is None or acc["conv"] is None:
                continue
            if st["shifts_seen"] < start + HOUR_MS:
                waiting.append(start)
                continue
            conv = acc["conv"]
            visitors, tx = int(conv["visitors"]), int(conv["transactions"])
            on_floor = self._staff(store, st, start) / 60 or None
            hist = [h[1:] for h in st["history"] if int(h[0]) < start]
            finding = understaffed(visitors, tx, on_floor, hist, self.cfg)
            emitted += rules.reconcile(
                st["alerts"],
                store_id=store.id,
                hour_start_ms=start,
                evaluated=[UNDERSTAFFED],
                findings=[finding] if finding else [],
                fired_at_ms=start + HOUR_MS,
                tenant_id=store.tenant_id,
                mall_id=store.mall_id,
            )
            st["history"] = [h for h in st["history"] if int(h[0]) != start]
            if on_floor and visitors >= self.cfg.understaffed_min_visitors:
                st["history"].append([start, visitors / on_floor, tx / visitors])
                st["history"].sort(key=lambda h: h[0])
        st["pending"] = waiting
        if st["history"]:
            horizon = st["history"][-1][0] - self.cfg.history_days * 24 * HOUR_MS
            st["history"] = [h for h in st["history"] if h[0] >= horizon]
        while len(st["alerts"]) > 2000:
            del st["alerts"][next(iter(st["alerts"]))]
        return emitted

    def _staff(self, store: Store, st: OpsStore, start: int) -> float:
        return staff_minutes(
            (s for s in st["shifts"].values() if s["end"] != 0 or s["start"] != 0),
            start,
            start + HOUR_MS,
            store.floor_roles,
            self.cfg.open_shift_max_ms,
        )

    def _queue_alerts(self, store: Store, st: OpsStore, touched: dict[str, OpsHour]) -> list[dict[str, Any]]:
        run = st["queue"]
        if not st["newest_q"]:
            return []
        until = (st["newest_q"] - self.cfg.queue_grace_ms) // MINUTE_MS * MINUTE_MS
        if not run["at"]:
            run["at"] = st["hours"][0] if st["hours"] else until
        cfg = store.queue_alert
        emitted = []
        lengths: dict[int, dict[int, float]] = {}
        while run["at"] < until:
            minute = run["at"]
            start = hour_start(minute, store.timezone)
            if start not in lengths:
                acc = touched.get(ops_key(store.id, start)) or self.hours.get(ops_key(store.id, start))
                lengths[start] = queue_minute_lengths(acc["q"]) if acc else {}
            if not lengths[start] and not run["since"] and not run["firing"]:
                run["at"] = start + HOUR_MS  # no queue data in the hour and no incident open: skip it
                continue
            value = lengths[start].get((minute - start) // MINUTE_MS)
            record = queue_step(run, minute, value, cfg.people, cfg.minutes, store)
            if record is not None:
                emitted.append(record)
        return emitted

    def _prune(self, store_id: str, st: OpsStore, touched: dict[str, OpsHour]) -> None:
        horizon = st["newest"] - self.cfg.hour_retention_ms
        keep = []
        for start in st["hours"]:
            if start + HOUR_MS < horizon:
                key = ops_key(store_id, start)
                touched.pop(key, None)
                if key in self.hours:
                    del self.hours[key]
            else:
                keep.append(start)
        st["hours"] = keep
        for sid, shift in list(st["shifts"].items()):
            end = shift["end"] if shift["end"] is not None else shift["start"] + self.cfg.open_shift_max_ms
            if end < horizon:
                del st["shifts"][sid]


__all__ = [
    "CONVERSION",
    "FRAME",
    "QUEUE_LONG",
    "SHIFT",
    "TICKET",
    "UNDERSTAFFED",
    "OpsConfig",
    "OpsEngine",
    "OpsOutput",
    "attribute_lines",
    "ops_rows",
    "queue_minute_lengths",
    "queue_stats",
    "queue_step",
    "shift_minutes",
    "staff_minutes",
    "understaffed",
]
