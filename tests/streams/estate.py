"""A small seeded estate day for the streams tests (explicit, independent of the producers' simulator).

Every store of the demo catalogue gets camera frames once a minute per camera while open, and tickets that
follow the visitors (SALE, REFUND, VOID, EMPLOYEE_SALE, an ONLINE order now and then, cash and card).
Some records are duplicated and some arrive late (emitted up to 40 minutes after their event time, beyond
the 10-minute lateness, so they become corrections). Returns JSON-form records in emit order.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.catalogue import Catalogue
from schemas.models import CameraCount, PosTicket
from schemas.topics import CAMERA_COUNTS, POS_TICKETS


@dataclass(frozen=True)
class Ev:
    topic: str
    record: dict[str, Any]
    emit_at: datetime


def estate_day(
    catalogue: Catalogue,
    day: date,
    seed: int = 7,
    *,
    dup_rate: float = 0.01,
    late_rate: float = 0.01,
    silent_feed: tuple[str, set[int]] | None = None,
    sales_drop: tuple[str, int, float] | None = None,
) -> list[Ev]:
    """Events of one local day per store.

    Incidents: ``silent_feed`` = (store, local hours) drops all its tickets in those hours; ``sales_drop`` =
    (store, local hour, kept share) keeps only that share of its sales in that hour.
    """
    rng = random.Random(seed)
    events: list[Ev] = []
    n = 0
    for store in catalogue.stores:
        hours = store.hours_on(day.weekday())
        if hours is None:
            continue
        cams = catalogue.cameras_of(store.id)
        open_at = datetime.combine(day, hours.open, tzinfo=store.tz)
        close_at = datetime.combine(day, hours.close, tzinfo=store.tz)
        minute = open_at
        seq = {c.id: 0 for c in cams}
        while minute < close_at:
            entrances_total = 0
            for cam in cams:
                seq[cam.id] += 1
                entries = rng.choice((0, 0, 1, 1, 2, 3)) if cam.role == "entrance" else rng.choice((0, 1, 2))
                if cam.role == "entrance":
                    entrances_total += entries
                queue = cam.role == "queue"  # people waiting at the tills; no door line, so no crossings
                frame = CameraCount(
                    camera_id=cam.id,
                    store_id=store.id,
                    zone_id=cam.zone_id,
                    frame_ts=minute,
                    frame_seq=seq[cam.id],
                    people_in_frame=entries,
                    entries=0 if queue else entries,
                    exits=0 if queue else rng.choice((0, 1, 2)),
                    detector="estate",
                )
                events.append(Ev(CAMERA_COUNTS, frame.to_json(), minute + timedelta(seconds=1)))
            for _ in range(entrances_total):
                if rng.random() > 0.3:
                    continue
                n += 1
                at = minute + timedelta(seconds=rng.randrange(60))
                local_hour = at.astimezone(store.tz).hour
                if silent_feed and silent_feed[0] == store.id and local_hour in silent_feed[1]:
                    continue
                if sales_drop and sales_drop[:2] == (store.id, local_hour) and rng.random() > sales_drop[2]:
                    continue
                kind = rng.choices(("SALE", "REFUND", "VOID", "EMPLOYEE_SALE"), (90, 4, 3, 3))[0]
                net = rng.randrange(500, 20_000)
                disc = rng.choice((0, 0, 0, net // 10))
                sign = -1 if kind in ("REFUND", "VOID") else 1  # signed amounts: reversals are negative
                payments = [{"method": rng.choice(("CASH", "CARD", "CARD", "MOBILE")), "amount": sign * net}]
                lines = [
                    {
                        "sku": f"S{rng.randrange(99)}",
                        "quantity": sign * float(rng.randrange(1, 4)),
                        "unit_price": net,
                        "net_amount": sign * net,
                        "discount_amount": sign * disc,
                    }
                ]
                ticket = PosTicket(
                    ticket_id=f"{store.id}-{n}",
                    source="estate",
                    store_id=store.id,
                    tenant_id=store.tenant_id,
                    kind=kind,
                    occurred_at=at,
                    currency=store.currency,
                    gross_amount=sign * (net + disc),
                    net_amount=sign * net,
                    tax_amount=0,
                    discount_amount=disc,
                    payments=payments,
                    channel="ONLINE" if rng.random() < 0.03 else "IN_STORE",
                    lines=lines,
                    ingested_at=at,
                )
                events.append(Ev(POS_TICKETS, ticket.to_json(), at + timedelta(seconds=2)))
            minute += timedelta(minutes=1)
    out: list[Ev] = []
    for ev in events:
        emit = ev.emit_at
        if rng.random() < late_rate:
            emit += timedelta(minutes=rng.randrange(15, 40))
        out.append(Ev(ev.topic, ev.record, emit))
        if rng.random() < dup_rate:
            out.append(Ev(ev.topic, ev.record, emit + timedelta(seconds=rng.randrange(1, 300))))
    out.sort(key=lambda e: e.emit_at.astimezone(UTC))
    return out


def write_files(directory: Path, events: list[Ev]) -> tuple[Path, Path]:
    """The events as DIR/tickets.jsonl and DIR/counts.jsonl, one JSON record per line, in the order given."""
    directory.mkdir(parents=True, exist_ok=True)
    tickets, counts = directory / "tickets.jsonl", directory / "counts.jsonl"
    with tickets.open("w") as t, counts.open("w") as c:
        for ev in events:
            (t if ev.topic == POS_TICKETS else c).write(json.dumps(ev.record) + "\n")
    return tickets, counts
