"""A seeded two-store estate for the store-operations tests: traffic, lined tickets, queue frames and a rota.

Independent of the producers' simulator. Every open minute each entrance camera sends a frame; the zone camera
of ``op-fashion`` counts its zone; two queue cameras over the tills report the people waiting. Visitors buy
with a steady conversion; lines carry categories, some of which no zone lists (``unmapped``). Staff follow a
rota sized to the traffic curve, with breaks, plus a stock role that is not on the floor.

Incidents: ``understaffed`` = (store, day, local hour): traffic 2.5x, conversion 0.4x and all but one staff
member off the floor that hour; ``queue`` = (store, day, local hour, first minute, last minute): the queue
stands at 9-10 people in those minutes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from schemas.catalogue import Catalogue, parse_catalogue
from schemas.models import CameraCount, PosTicket
from schemas.storeops import StaffShift
from schemas.topics import CAMERA_COUNTS, POS_TICKETS, STAFF_SHIFTS

OPENING = {d: {"open": "09:00", "close": "19:00"} for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def ops_catalogue() -> Catalogue:
    return parse_catalogue(
        {
            "stores": [
                {
                    "id": "op-fashion", "name": "Fashion", "timezone": "Europe/Berlin", "area_m2": 300,
                    "category": "fashion", "currency": "EUR", "opening_hours": OPENING,
                    "zones": [
                        {"id": "womens", "area_m2": 120, "categories": ["dresses", "tops"]},
                        {"id": "mens", "area_m2": 90, "categories": ["shirts", "trousers"]},
                    ],
                    "queue_alert": {"people": 6, "minutes": 4},
                    "floor_roles": ["sales", "cashier"],
                },
                {
                    "id": "op-grocer", "name": "Grocer", "timezone": "Asia/Kolkata", "area_m2": 500,
                    "category": "grocery", "currency": "INR", "opening_hours": OPENING,
                    "zones": [{"id": "fresh", "area_m2": 200, "categories": ["produce"]}],
                },
            ],
            "cameras": [
                {"id": "op-f-door", "store_id": "op-fashion", "zone_id": None, "role": "entrance"},
                {"id": "op-f-women", "store_id": "op-fashion", "zone_id": "womens", "role": "zone"},
                {"id": "op-f-q1", "store_id": "op-fashion", "zone_id": None, "role": "queue"},
                {"id": "op-f-q2", "store_id": "op-fashion", "zone_id": None, "role": "queue"},
                {"id": "op-g-door", "store_id": "op-grocer", "zone_id": None, "role": "entrance"},
                {"id": "op-g-q", "store_id": "op-grocer", "zone_id": None, "role": "queue"},
            ],
        }
    )  # fmt: skip


CATEGORIES = {"op-fashion": ["dresses", "tops", "shirts", "trousers", "socks"], "op-grocer": ["produce", "dairy"]}


@dataclass(frozen=True)
class Ev:
    topic: str
    record: dict[str, Any]
    emit_at: datetime


def _curve(hour: int) -> float:
    return 1.0 + 0.3 * (1 - abs(hour - 14) / 5)  # mild midday peak


def ops_day(
    catalogue: Catalogue,
    day: date,
    seed: int,
    *,
    understaffed: tuple[str, int] | None = None,
    queue: tuple[str, int, int, int] | None = None,
) -> list[Ev]:
    """Events of one local day per store, in emit order (a shift at clock-in, open, and again at clock-out)."""
    rng = random.Random(seed)
    events: list[Ev] = []
    for store in catalogue.stores:
        cams = catalogue.cameras_of(store.id)
        seq = {c.id: int(day.strftime("%j")) * 10_000 for c in cams}
        open_at = datetime.combine(day, datetime.strptime("09:00", "%H:%M").time(), tzinfo=store.tz)
        n = 0
        for minute_no in range(10 * 60):
            at = open_at + timedelta(minutes=minute_no)
            hour = at.hour
            rush = understaffed is not None and understaffed == (store.id, hour)
            rate = 1.4 * _curve(hour) * (2.5 if rush else 1.0)
            conv = 0.3 * (0.4 if rush else 1.0)
            entries = sum(1 for _ in range(8) if rng.random() < rate / 8)
            long_queue = queue is not None and queue[:2] == (store.id, hour) and queue[2] <= at.minute <= queue[3]
            for cam in cams:
                seq[cam.id] += 1
                people, ins = 0, 0
                if cam.role == "entrance":
                    people = ins = entries
                elif cam.role == "zone":
                    people = ins = sum(1 for _ in range(entries) if rng.random() < 0.5)
                else:
                    people = (9 + rng.randrange(2)) if long_queue else rng.randrange(4)
                    if long_queue and len([c for c in cams if c.role == "queue"]) > 1:
                        people = people // 2 + (cam.id.endswith("1") and people % 2)
                frame = CameraCount(
                    camera_id=cam.id, store_id=store.id, zone_id=cam.zone_id, frame_ts=at + timedelta(seconds=5),
                    frame_seq=seq[cam.id], people_in_frame=people, entries=ins, exits=0, detector="ops-estate",
                )  # fmt: skip
                events.append(Ev(CAMERA_COUNTS, frame.to_json(), at + timedelta(seconds=6)))
            for _ in range(entries):
                if rng.random() >= conv:
                    continue
                n += 1
                paid = at + timedelta(seconds=10 + rng.randrange(45))
                lines: list[dict[str, Any]] = []
                for i in range(1 + rng.randrange(3)):
                    net = rng.randrange(200, 6000)
                    lines.append(
                        {"sku": f"k{i}", "quantity": 1.0, "unit_price": net, "net_amount": net, "discount_amount": 0,
                         "category": rng.choice([*CATEGORIES[store.id], None])}
                    )  # fmt: skip
                total = sum(ln["net_amount"] for ln in lines)
                kind = "VOID" if rng.random() < 0.02 else "SALE"
                sign = -1 if kind == "VOID" else 1
                if kind == "VOID":
                    lines = [{**ln, "quantity": -1.0, "net_amount": -ln["net_amount"]} for ln in lines]
                ticket = PosTicket(
                    ticket_id=f"{store.id}-{day:%m%d}-{n}", source="ops-estate", store_id=store.id, kind=kind,
                    occurred_at=paid, currency=store.currency, gross_amount=sign * total, net_amount=sign * total,
                    tax_amount=0, discount_amount=0, payments=[{"method": "CARD", "amount": sign * total}],
                    lines=lines, ingested_at=paid,
                )  # fmt: skip
                events.append(Ev(POS_TICKETS, ticket.to_json(), paid + timedelta(seconds=2)))
        events += _rota(store.id, store.tz, day, understaffed)
    events.sort(key=lambda e: e.emit_at.astimezone(UTC))
    return events


def _rota(store_id: str, tz: Any, day: date, understaffed: tuple[str, int] | None) -> list[Ev]:
    """Two early, two late sales shifts, a cashier across the day, a stock shift; breaks of 30 minutes."""

    def at(hh: int, mm: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hh, mm, tzinfo=tz)

    plan = [("e1", "sales", 9, 15, 12), ("e2", "sales", 9, 15, 13), ("l1", "sales", 13, 19, 16),
            ("l2", "sales", 13, 19, 17), ("c1", "cashier", 10, 18, 14), ("s1", "stock", 8, 12, None)]  # fmt: skip
    out = []
    for sid, role, start, end, brk in plan:
        breaks = [{"start_at": at(brk), "end_at": at(brk, 30)}] if brk is not None else []
        if understaffed is not None and understaffed[0] == store_id and role != "stock" and sid != "c1":
            hour = understaffed[1]
            if start <= hour < end:
                breaks.append({"start_at": at(hour), "end_at": at(hour + 1)})  # off the floor that hour
                breaks = [b for b in breaks if b["start_at"].hour != hour or b["end_at"] == at(hour + 1)]
        fields = {"shift_id": f"rota:{store_id}:{day:%Y%m%d}:{sid}", "source": "rota", "store_id": store_id,
                  "staff_ref": f"rota:{sid}", "role": role, "start_at": at(start)}  # fmt: skip
        clock_in = StaffShift(**fields, ingested_at=at(start))  # open until clock-out
        out.append(Ev(STAFF_SHIFTS, clock_in.to_json(), at(start, 1)))
        clock_out = StaffShift(**fields, end_at=at(end), breaks=breaks, ingested_at=at(end, 5))
        out.append(Ev(STAFF_SHIFTS, clock_out.to_json(), at(end, 5)))
    return out
