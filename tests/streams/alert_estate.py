"""Weeks of a small estate for the hourly alert kinds, fast enough for the suite (explicit, seeded).

Four stores of the demo catalogue in three time zones (a Berlin tenant with one door camera, the grocer
with two door cameras and two queue cameras, a Mumbai street store, New York with a queue camera). Every
catalogue camera sends one frame per minute while the store is open; visitors enter by a Poisson process
shaped over the day, and a share of them pays 3-25 minutes later. Records are decoded dicts as the Avro
reader returns them (epoch-ms timestamps), in event-time order.

Incidents (store-local times), each with its strength:

- ``SalesDrop(store, at, hours, kept)``: only ``kept`` of the sales paid in the window are made;
- ``TrafficDrop(store, at, hours, kept)``: only ``kept`` of the visitors come in (and buy);
- ``SilentFeed(store, at, minutes)``: no ticket paid in the window is delivered;
- ``DeadCamera(camera, at, minutes)``: the camera sends no frame (its door's visitors are not counted).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np

from schemas.catalogue import Catalogue
from streams.hours import HOUR_MS, hour_start
from tests.support.events import demo

STORES = ("wg-denim", "wg-grocer", "mum-bandra", "nyc-soho")
PEAK_VISITORS = {"wg-denim": 110.0, "wg-grocer": 260.0, "mum-bandra": 120.0, "nyc-soho": 140.0}
"""Visitors in the busiest hour of the day."""
CONVERSION = {"wg-denim": 0.22, "wg-grocer": 0.45, "mum-bandra": 0.3, "nyc-soho": 0.18}


@dataclass(frozen=True)
class SalesDrop:
    store: str
    at: str
    hours: int
    kept: float


@dataclass(frozen=True)
class TrafficDrop:
    store: str
    at: str
    hours: int
    kept: float


@dataclass(frozen=True)
class SilentFeed:
    store: str
    at: str
    minutes: int


@dataclass(frozen=True)
class DeadCamera:
    camera: str
    at: str
    minutes: int


Incident = SalesDrop | TrafficDrop | SilentFeed | DeadCamera


def catalogue() -> Catalogue:
    full = demo()
    return Catalogue(
        stores=tuple(s for s in full.stores if s.id in STORES),
        cameras=tuple(c for c in full.cameras if c.store_id in STORES),
    )


def local_ms(cat: Catalogue, store_id: str, at: str) -> int:
    """Epoch ms of a store-local wall-clock time such as ``2026-02-12T14:30``."""
    store = cat.store(store_id)
    return int(datetime.fromisoformat(at).replace(tzinfo=store.tz).timestamp() * 1000)


def window(cat: Catalogue, incident: Incident) -> tuple[str, int, int]:
    """(store, start ms, end ms) of an incident."""
    if isinstance(incident, DeadCamera):
        store = next(c.store_id for c in cat.cameras if c.id == incident.camera)
    else:
        store = incident.store
    start = local_ms(cat, store, incident.at)
    if isinstance(incident, SalesDrop | TrafficDrop):
        return store, start, start + incident.hours * HOUR_MS
    return store, start, start + incident.minutes * 60_000


def incident_hours(cat: Catalogue, incident: Incident) -> set[int]:
    """UTC starts of the local hours an incident touches."""
    store_id, start, end = window(cat, incident)
    tz = cat.store(store_id).timezone
    return {hour_start(t, tz) for t in range(start, end, 60_000)}


def _shape(hour: float) -> float:
    """Relative footfall over the day (peak 1.0 at 13:00 and 18:00)."""
    return 0.35 + 0.65 * max(math.exp(-(((hour - 13.0) / 2.2) ** 2)), math.exp(-(((hour - 18.0) / 1.8) ** 2)))


def events(
    cat: Catalogue, start: date, days: int, seed: int, incidents: Sequence[Incident] = ()
) -> list[tuple[str, dict]]:
    """(``ticket`` | ``frame``, decoded record) of ``days`` local days from ``start``, in event-time order."""
    rng = np.random.default_rng(seed)
    out: list[tuple[int, str, dict]] = []
    seq: dict[str, int] = {}
    n_ticket = 0
    for store in cat.stores:
        cams = cat.cameras_of(store.id)
        doors = [c.id for c in cams if c.role == "entrance"]
        sales: list[tuple[float, int, int]] = []  # (kept, start, end)
        traffic: list[tuple[float, int, int]] = []
        silent: list[tuple[int, int]] = []
        dead: list[tuple[str, int, int]] = []
        for inc in incidents:
            where, begin, end = window(cat, inc)
            if where != store.id:
                continue
            if isinstance(inc, SalesDrop):
                sales.append((inc.kept, begin, end))
            elif isinstance(inc, TrafficDrop):
                traffic.append((inc.kept, begin, end))
            elif isinstance(inc, SilentFeed):
                silent.append((begin, end))
            else:
                dead.append((inc.camera, begin, end))
        for d in range(days):
            day = start + timedelta(days=d)
            hours = store.hours_on(day.weekday())
            if hours is None:
                continue
            opens = int(datetime.combine(day, hours.open, tzinfo=store.tz).timestamp() * 1000)
            closes = int(datetime.combine(day, hours.close, tzinfo=store.tz).timestamp() * 1000)
            day_factor = float(rng.lognormal(0.0, 0.08)) * (1.15 if day.weekday() >= 5 else 1.0)
            for minute in range(opens, closes, 60_000):
                local = (minute - opens) / HOUR_MS + hours.open.hour + hours.open.minute / 60
                lam = PEAK_VISITORS[store.id] / 60 * _shape(local) * day_factor
                kept = math.prod(k for k, a, b in traffic if a <= minute < b)
                entries = int(rng.poisson(lam * kept))
                by_door = rng.multinomial(entries, [1 / len(doors)] * len(doors)) if doors else np.zeros(0, dtype=int)
                for cam in cams:
                    if any(c == cam.id and a <= minute < b for c, a, b in dead):
                        continue
                    seq[cam.id] = seq.get(cam.id, 0) + 1
                    n_in = int(by_door[doors.index(cam.id)]) if cam.id in doors else 0
                    frame = {
                        "camera_id": cam.id,
                        "store_id": store.id,
                        "zone_id": cam.zone_id,
                        "frame_ts": minute + 30_000,
                        "frame_seq": seq[cam.id],
                        "people_in_frame": n_in,
                        "entries": n_in,
                        "exits": n_in,
                        "detector": "alert-estate",
                    }
                    out.append((minute + 30_000, "frame", frame))
                for _ in range(entries):
                    paid = minute + int(rng.integers(3 * 60_000, 25 * 60_000))
                    if paid >= closes or rng.random() >= CONVERSION[store.id]:
                        continue
                    keep = math.prod(k for k, a, b in sales if a <= paid < b)
                    if rng.random() >= keep or any(a <= paid < b for a, b in silent):
                        continue
                    n_ticket += 1
                    net = int(rng.lognormal(math.log(2500), 0.6))
                    cash = rng.random() < 0.3
                    ticket = {
                        "ticket_id": f"{store.id}-{n_ticket}",
                        "source": "alert-estate",
                        "store_id": store.id,
                        "tenant_id": store.tenant_id,
                        "terminal_id": "1",
                        "kind": "SALE",
                        "occurred_at": paid,
                        "currency": store.currency,
                        "gross_amount": net,
                        "net_amount": net,
                        "tax_amount": 0,
                        "discount_amount": 0,
                        "payments": [{"method": "CASH" if cash else "CARD", "amount": net}],
                        "channel": "IN_STORE",
                        "lines": [{"sku": "A", "quantity": 1.0, "unit_price": net, "net_amount": net}],
                    }
                    out.append((paid, "ticket", ticket))
    out.sort(key=lambda e: e[0])
    return [(kind, rec) for _, kind, rec in out]


def batches(evs: Sequence[tuple[str, dict]], size: int = 300) -> Iterator[Sequence[tuple[str, dict]]]:
    for i in range(0, len(evs), size):
        yield evs[i : i + size]
