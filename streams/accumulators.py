"""Per store-hour accumulators and the metrics computed from them (pure functions, no I/O).

An accumulator is a plain dict so it can live in a Faust table (JSON changelog) as it is. Definitions:

- visitors / exits: entries / exits counted by the store's entrance cameras (zone_id null), summed over
  doors; for a zone hour, by that zone's cameras.
- transactions, net_revenue, gross_revenue, discount_amount, units, cash share: SALE tickets, IN_STORE
  channel, less the VOIDs in the hour (a VOID cancels a sale with negated amounts: transactions - 1, its
  negative amounts added). refunds / voids / employee_sales: number of REFUND / VOID / EMPLOYEE_SALE tickets
  in store; refund_amount is the refunds' magnitude. cash_share is over the payments of sales (VOIDs
  left out), so it cannot turn negative in an hour where a void follows a sale of the hour before.
  LAYAWAY and DEFERRED tickets and other channels are not store sales and count nowhere.
- conversion = transactions / visitors (null without visitors; over 1 is kept and flagged).
- void_rate = voids / in-store tickets of every kind; discount_rate = discount / gross of sales;
  cash_share = cash payments / all payments of sales; revenue_per_m2 uses the store (or zone) area.
Zone hours carry traffic only (tickets have no zone): their sales fields are 0 and flagged ZONE_TRAFFIC_ONLY.
"""

from __future__ import annotations

import hashlib
from typing import Any

from streams.dedupe import interval_add
from streams.hours import HOUR_MS, local_hour_iso

Acc = dict[str, Any]

COUNTERS = ("v", "x", "tx", "net", "gross", "disc", "units", "rf", "rfa", "vd", "emp", "cash", "pay", "tk", "fr")


def new_hour(store_id: str, zone_id: str | None, start_ms: int, tz: str) -> Acc:
    """An empty accumulator for one store (or zone) and local hour starting at ``start_ms`` (UTC)."""
    acc: Acc = {c: 0 for c in COUNTERS}
    acc.update(
        store=store_id,
        zone=zone_id,
        start=start_ms,
        tz=tz,
        cur=None,
        rev=0,
        closed=False,
        dirty=False,
        emitted=0,
        seen_t={},  # ticket_id -> 1 (a JSON object: O(1) lookups after a changelog restore)
        seen_f={},
        mt=[0] * 60,  # tickets per minute of the hour (silence detection)
        mv=[0] * 60,  # entrance entries per minute
        mc={},  # camera id -> bitmask of the minutes it sent frames (store-level hours)
    )
    acc["units"] = 0.0
    return acc


def hour_key(store_id: str, zone_id: str | None, start_ms: int) -> str:
    """Table key of a store-hour (zone '' for the whole store)."""
    return f"{store_id}|{zone_id or ''}|{start_ms}"


def ticket_hash(ticket_id: str) -> str:
    """48-bit hash of a ticket id: what a compact hour remembers of the tickets it counted."""
    return hashlib.blake2b(ticket_id.encode(), digest_size=6).hexdigest()


def compact(acc: Acc) -> None:
    """Shrink a closed hour kept for late records: its ticket ids become 48-bit hashes (the frame_seq ranges
    are compact already). A late ticket is then deduplicated by hash; two different ids of one store-hour
    share a hash with probability about n²/2^49 (1e-9 for 1,000 tickets)."""
    acc["seen_t"] = {ticket_hash(tid): 1 for tid in acc["seen_t"] or ()}
    acc["compact"] = True


def add_ticket(acc: Acc, ticket: dict[str, Any]) -> bool:
    """Count one decoded PosTicket; False (and nothing counted) when its ticket_id was seen in this hour."""
    seen = acc["seen_t"]
    tid = ticket["ticket_id"] if not acc.get("compact") else ticket_hash(ticket["ticket_id"])
    if seen is not None:
        if tid in seen:
            return False
        seen[tid] = 1
    acc["mt"][_minute(acc, ticket["occurred_at"])] += 1
    if ticket.get("channel", "IN_STORE") != "IN_STORE":
        return True
    kind = ticket["kind"]
    acc["tk"] += 1
    if acc["cur"] is None:
        acc["cur"] = ticket.get("currency")
    if kind == "SALE" or kind == "VOID":
        # A VOID cancels an in-store sale and carries its negated amounts (signed amounts, see
        # schemas.models.PosTicket): it takes the sale back out of the hour in which the VOID happens.
        if kind == "VOID":
            acc["vd"] += 1
            acc["tx"] -= 1
        else:
            acc["tx"] += 1
        acc["net"] += ticket["net_amount"]
        acc["gross"] += ticket["gross_amount"]
        acc["disc"] += ticket["discount_amount"]
        if ticket["discount_amount"]:
            acc["dk"] = acc.get("dk", 0) + (1 if kind == "SALE" else -1)  # sales with a discount
        units = 0.0
        for line in ticket.get("lines") or ():
            units += line["quantity"]
        acc["units"] += units
        if kind == "VOID":
            return True  # tender shares are over sales' payments; the void rate carries the voids
        for payment in ticket.get("payments") or ():
            acc["pay"] += payment["amount"]
            if payment["method"] == "CASH":
                acc["cash"] += payment["amount"]
    elif kind == "REFUND":
        acc["rf"] += 1
        acc["rfa"] += abs(ticket["net_amount"])
    elif kind == "EMPLOYEE_SALE":
        acc["emp"] += 1
    return True


def add_frame(acc: Acc, frame: dict[str, Any]) -> bool:
    """Count one decoded CameraCount frame; False when (camera_id, frame_seq) was seen in this hour."""
    seen = acc["seen_f"]
    if seen is not None:
        intervals = seen.get(frame["camera_id"])
        if intervals is None:
            intervals = seen[frame["camera_id"]] = []
        if not interval_add(intervals, frame["frame_seq"]):
            return False
    if acc["zone"] is None and frame.get("zone_id") is None:
        acc["mv"][_minute(acc, frame["frame_ts"])] += frame["entries"]
    acc["v"] += frame["entries"]
    acc["x"] += frame["exits"]
    acc["fr"] += 1
    return True


def _minute(acc: Acc, ts: Any) -> int:
    """Minute of the hour (0-59) of an event time (epoch ms or datetime)."""
    ms = ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
    return min(max((ms - int(acc["start"])) // 60_000, 0), 59)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def hourly_record(
    acc: Acc,
    *,
    area_m2: float | None,
    mall_id: str | None,
    category: str | None,
    tenant_id: str | None,
    currency: str | None,
    is_final: bool,
    updated_at_ms: int,
) -> dict[str, Any]:
    """The HourlyConversion record (Avro dict, timestamps as epoch ms) of an accumulator."""
    visitors, tx, net = acc["v"], acc["tx"], acc["net"]
    flags: list[str] = []
    conversion = _ratio(tx, visitors)
    if conversion is not None and conversion > 1:
        flags.append("CONVERSION_OVER_ONE")
    if acc["zone"] is not None:
        flags.append("ZONE_TRAFFIC_ONLY")
    else:
        if acc["fr"] == 0:
            flags.append("NO_CAMERA_DATA")
        if acc["tk"] == 0:
            flags.append("NO_POS_DATA")
    return {
        "store_id": acc["store"],
        "zone_id": acc["zone"],
        "tenant_id": tenant_id,
        "mall_id": mall_id,
        "category": category,
        "hour_start": acc["start"],
        "local_hour": local_hour_iso(acc["start"], acc["tz"]),
        "timezone": acc["tz"],
        "currency": acc["cur"] or currency,
        "visitors": visitors,
        "exits": acc["x"],
        "transactions": tx,
        "net_revenue": net,
        "gross_revenue": acc["gross"],
        "discount_amount": acc["disc"],
        "units": float(acc["units"]),
        "refunds": acc["rf"],
        "refund_amount": acc["rfa"],
        "voids": acc["vd"],
        "employee_sales": acc["emp"],
        "cash_amount": acc["cash"],
        "conversion": conversion,
        "avg_ticket": _ratio(net, tx),
        "units_per_transaction": _ratio(acc["units"], tx),
        "revenue_per_visitor": _ratio(net, visitors),
        "revenue_per_m2": _ratio(net, area_m2 or 0),
        "void_rate": _ratio(acc["vd"], acc["tk"]),
        "discount_rate": _ratio(acc["disc"], acc["gross"]),
        "cash_share": _ratio(acc["cash"], acc["pay"]),
        "quality_flags": flags,
        "is_final": is_final,
        "revision": acc["rev"],
        "updated_at": updated_at_ms,
        "complete_share": None,  # store hours: set by the engine (streams.availability)
        "pos_complete_share": None,
        "all_complete_share": None,
    }


def hour_end(acc: Acc) -> int:
    return int(acc["start"]) + HOUR_MS
