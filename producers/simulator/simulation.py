"""The simulation itself: plain, seeded, deterministic functions from (catalogue, config) to events.

Each store and local day is planned on its own random stream (seed, store, date), so adding a store, a
day or an incident leaves every other store-day unchanged. Every per-visitor random draw is made for all
candidate visitors before any incident thins them, so an incident changes only what it targets.
"""

from __future__ import annotations

import heapq
import random
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial

import numpy as np

from producers.simulator.incidents import (
    Incident,
    InjectedIncident,
    Window,
    ground_truth,
    incident_from,
    local_day_hours,
    open_interval,
    resolve,
)
from producers.simulator.operations import line_category, queue_series, rota
from producers.simulator.profiles import (
    CASH_HEAVY_CATEGORIES,
    REDUCED_TAX_CATEGORIES,
    CategoryProfile,
    CurrencyProfile,
    currency_profile,
    hour_weight,
    profile,
)
from schemas.catalogue import Catalogue, Store
from schemas.models import (
    CameraCount,
    Channel,
    Payment,
    PaymentMethod,
    PosTicket,
    TicketKind,
    TicketLine,
    reversed_amounts,
)
from schemas.storeops import StaffShift
from schemas.topics import CAMERA_COUNTS, POS_TICKETS, STAFF_SHIFTS

MS_PER_MIN = 60_000
MS_PER_HOUR = 3_600_000


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. ``incidents`` accepts :class:`Incident` objects or CLI strings."""

    seed: int = 0
    start: date = date(2026, 3, 29)
    days: int = 1
    fps: float = 1.0
    incidents: Sequence[Incident | str] = ()
    source: str = "simulator"
    """``source`` of every ticket (the connector instance name)."""
    detector: str = "simulator"
    """``detector`` of every camera frame."""
    pre_open_min: float = 15.0
    """Cameras start this many minutes before opening..."""
    post_close_min: float = 30.0
    """...and stop this many minutes after closing (every visitor has left by then)."""
    ticket_latency_s: tuple[float, float] = (0.5, 4.0)
    """POS delivery delay after the sale, uniform in this range."""
    staffing: bool = False
    """Publish each store's rota on staff.shifts (producers/simulator/operations.py); `tillflow simulate` turns
    it on unless ``--no-staffing``."""
    staff_source: str = "rota"
    """``source`` of every simulated shift."""

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0 < self.fps <= 30:
            raise ValueError("fps must be in (0, 30]")
        object.__setattr__(
            self, "incidents", tuple(incident_from(i) if isinstance(i, str | dict) else i for i in self.incidents)
        )

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    @property
    def parsed_incidents(self) -> list[Incident]:
        return [i for i in self.incidents if isinstance(i, Incident)]


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One delivery: ``record`` on ``topic`` at ``emit_at`` (UTC). Late and duplicated deliveries are flagged."""

    topic: str
    record: PosTicket | CameraCount | StaffShift
    emit_at: datetime
    late: bool = False
    duplicate: bool = False


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _stable(text: str) -> int:
    return zlib.crc32(text.encode())


def injected(catalogue: Catalogue, config: SimulationConfig) -> list[InjectedIncident]:
    """Ground truth of the incidents of ``config``: concrete stores, UTC windows and open store-hours."""
    return ground_truth(config.parsed_incidents, catalogue, config.dates)


# --- effects of incidents on one store -------------------------------------------------------------------


@dataclass
class StoreEffects:
    """The incidents that touch one store, as UTC windows (``Window``) with their parameters."""

    sales_drop: list[tuple[Window, float]] = field(default_factory=list)
    traffic_drop: list[tuple[Window, float]] = field(default_factory=list)
    underreporting: list[tuple[Window, float, str]] = field(default_factory=list)
    """(window, share, mode: cash | all | void | refund | discount | employee)"""
    silent_feed: list[Window] = field(default_factory=list)
    dead_camera: list[tuple[str, Window]] = field(default_factory=list)
    late: list[tuple[Window, float, float, str | None]] = field(default_factory=list)
    """(window, fraction, minutes, topic or None for both)"""
    duplicate: list[tuple[Window, float, float, str | None]] = field(default_factory=list)
    """(window, fraction, lag seconds, topic or None)"""
    understaffed: list[tuple[Window, float]] = field(default_factory=list)
    """(window, conversion multiplier): staff off the floor (producers/simulator/operations.py)"""
    queue_long: list[tuple[Window, float]] = field(default_factory=list)
    """(window, people added to the queue)"""


def store_effects(catalogue: Catalogue, config: SimulationConfig) -> dict[str, StoreEffects]:
    """Incidents resolved per store."""
    effects = {s.id: StoreEffects() for s in catalogue.stores}
    for incident in config.parsed_incidents:
        for store, camera, window in resolve(incident, catalogue, config.dates):
            eff = effects[store.id]
            k = incident.kind
            if k == "sales-drop":
                eff.sales_drop.append((window, incident.param("factor")))
            elif k == "traffic-drop":
                eff.traffic_drop.append((window, incident.param("factor")))
            elif k == "underreporting":
                eff.underreporting.append((window, incident.param("share"), incident.param("mode")))
            elif k == "silent-feed":
                eff.silent_feed.append(window)
            elif k == "dead-camera":
                assert camera is not None
                eff.dead_camera.append((camera, window))
            elif k == "late":
                eff.late.append((window, incident.param("fraction"), incident.param("minutes"), incident.topic))
            elif k == "duplicate":
                eff.duplicate.append((window, incident.param("fraction"), incident.param("lag_s"), incident.topic))
            elif k == "understaffed":
                eff.understaffed.append((window, incident.param("factor")))
            elif k == "queue-long":
                eff.queue_long.append((window, incident.param("factor")))
    return effects


def _window_mask(times_ms: np.ndarray, window: Window) -> np.ndarray:
    start = _ms(window.start)
    mask = times_ms >= start
    if window.end is not None:
        mask &= times_ms < _ms(window.end)
    return mask


# --- planning one store-day ------------------------------------------------------------------------------


@dataclass
class TicketDraft:
    """A ticket before delivery: everything but ``ingested_at``; ``visitor`` is the index of its buyer or -1."""

    occurred_ms: int
    fields: dict[str, object]
    visitor: int = -1


@dataclass
class DayPlan:
    """The visitors and tickets of one store on one local day (after incidents)."""

    store: Store
    day: date
    opens_ms: int
    closes_ms: int
    cam_start_ms: int
    cam_end_ms: int
    entry_ms: np.ndarray
    exit_ms: np.ndarray
    door_in: np.ndarray
    door_out: np.ndarray
    zone_in_ms: dict[str, np.ndarray]
    """Per zone id: entry time into the zone per visitor (-1 when the visitor never goes there)."""
    zone_out_ms: dict[str, np.ndarray]
    tickets: list[TicketDraft]
    dropped_tickets: int = 0
    """Tickets that incidents kept from being delivered (underreporting, silent feed)."""
    queue_long: list[tuple[Window, float]] = field(default_factory=list)
    understaffed: list[tuple[Window, float]] = field(default_factory=list)

    @property
    def visitors(self) -> int:
        return len(self.entry_ms)


def _rng(config: SimulationConfig, store: Store, day: date, stream: str) -> np.random.Generator:
    return np.random.default_rng([config.seed & 0xFFFFFFFF, _stable(store.id), day.toordinal(), _stable(stream)])


def _door_weights(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1)
    return w / w.sum()


def plan_day(
    catalogue: Catalogue, store: Store, day: date, config: SimulationConfig, eff: StoreEffects
) -> DayPlan | None:
    """Visitors (entry, dwell, exit, doors, zones) and their tickets for one store-day; None when closed."""
    interval = open_interval(store, day)
    if interval is None:
        return None
    opens, closes = interval
    opens_ms, closes_ms = _ms(opens), _ms(closes)
    p = profile(store.category)
    rng = _rng(config, store, day, "visitors")
    weekday = day.weekday()

    # Expected visitors per local hour, from the weekday curve, for the part of each hour the store is open.
    daily = p.visitors_per_m2 * store.area_m2 * p.weekday_factor[weekday] * float(rng.lognormal(0.0, 0.08))
    buckets: list[tuple[int, int, float]] = []  # (start, end, footfall weight of the hour per full hour)
    for h in local_day_hours(store, day):
        start_ms, end_ms = max(_ms(h), opens_ms), min(_ms(h) + MS_PER_HOUR, closes_ms)
        if end_ms <= start_ms:
            continue
        local = h.astimezone(store.tz)
        mid = local.hour + ((start_ms + end_ms) / 2 - _ms(h)) / MS_PER_HOUR
        buckets.append((start_ms, end_ms, hour_weight(p, weekday, mid)))
    expected = [w * (e - s) / MS_PER_HOUR for s, e, w in buckets]  # a partly open hour gets its share
    total_w = sum(expected) or 1.0
    counts = rng.poisson([daily * x / total_w for x in expected]) if buckets else np.zeros(0, dtype=np.int64)
    hour_peak = max((w for _, _, w in buckets), default=1.0)
    entries_list = [rng.integers(s, e, size=int(c)) for (s, e, _), c in zip(buckets, counts, strict=True)]
    busy_list = [np.full(int(c), w / hour_peak) for (_, _, w), c in zip(buckets, counts, strict=True)]
    entry = np.concatenate(entries_list) if entries_list else np.zeros(0, dtype=np.int64)
    busy = np.concatenate(busy_list) if busy_list else np.zeros(0)
    order = np.argsort(entry, kind="stable")
    entry, busy = entry[order].astype(np.int64), busy[order]
    n = len(entry)

    # Every per-visitor draw, for all candidates, before anything is thinned.
    dwell_ms = (rng.lognormal(np.log(p.dwell_median_min), p.dwell_sigma, n) * MS_PER_MIN).astype(np.int64)
    keep_u = rng.random(n)
    buy_u = rng.random(n)
    refund_u = rng.random(n)
    kind_u = rng.random(n)
    frac = rng.uniform(0.55, 0.95, n)
    ticket_seed = rng.integers(0, 2**62, n)
    under_u = rng.random(n)
    void_u = rng.random(n)
    cams = catalogue.cameras_of(store.id)
    doors = [c for c in cams if c.role == "entrance"]
    n_doors = max(len(doors), 1)
    door_in = rng.choice(n_doors, size=n, p=_door_weights(n_doors))
    same_door = rng.random(n) < 0.8
    door_out = np.where(same_door, door_in, rng.choice(n_doors, size=n, p=_door_weights(n_doors)))
    zone_u = {z.id: rng.random((3, n)) for z in store.zones}
    conv_day = float(rng.lognormal(0.0, 0.05))

    exit_ = np.minimum(entry + np.maximum(dwell_ms, 30_000), closes_ms + 20 * MS_PER_MIN)

    # Traffic drop: visitors who would have come in during the window do not come.
    keep = np.ones(n, dtype=bool)
    for window, factor in eff.traffic_drop:
        keep &= ~(_window_mask(entry, window) & (keep_u >= factor))

    # Buyers pay between entering and leaving, before closing.
    pay_ms = entry + (frac * np.maximum(np.minimum(exit_, closes_ms) - entry, 0)).astype(np.int64)
    conv = base_conv = np.clip(p.conversion * conv_day * (1.08 - 0.16 * busy), 0.0, 0.98)
    for window, factor in [*eff.sales_drop, *eff.understaffed]:
        conv = np.where(_window_mask(pay_ms, window), conv * factor, conv)
    buyer = keep & (buy_u < conv)
    refunder = keep & ~buyer & (refund_u < p.refund_rate * conv / np.maximum(1 - conv, 0.02))

    zone_in: dict[str, np.ndarray] = {}
    zone_out: dict[str, np.ndarray] = {}
    for z in store.zones:
        u = zone_u[z.id]
        visits = u[0] < min(0.9, 0.25 + z.area_m2 / store.area_m2)
        zin = entry + (u[1] * 0.4 * (exit_ - entry)).astype(np.int64) + 1000
        zout = zin + ((0.3 + 0.6 * u[2]) * (exit_ - zin)).astype(np.int64)
        zone_in[z.id] = np.where(visits, zin, -1)[keep]
        zone_out[z.id] = np.where(visits, np.minimum(zout, exit_ - 1000), -1)[keep]

    # Tickets. Ids come from the buyer's place in the day (stable when incidents thin other visitors).
    cur = currency_profile(store.currency)
    key = f"{store.id}-{day:%Y%m%d}"
    tickets: list[TicketDraft] = []
    dropped = 0
    kept_index = np.cumsum(keep) - 1
    for i in np.flatnonzero(buyer | refunder):
        r = random.Random(int(ticket_seed[i]))
        t_ms = int(pay_ms[i])
        terminal = f"{store.id}-T{1 + r.randrange(_terminals(store))}"
        if buyer[i]:
            u = kind_u[i]
            kind = (
                TicketKind.LAYAWAY
                if u < p.layaway_rate
                else TicketKind.DEFERRED
                if u < p.layaway_rate + p.deferred_rate
                else TicketKind.SALE
            )
            fields = _ticket_fields(r, store, p, cur, kind, f"{key}-{i:05d}", terminal, t_ms)
            hidden = any(_window_mask(np.array([t_ms]), w)[0] for w in eff.silent_feed)
            pocketed = False
            fake_refund = False
            if kind is TicketKind.SALE:
                for window, share, mode in eff.underreporting:
                    if not (_window_mask(np.array([t_ms]), window)[0] and under_u[i] < share):
                        continue
                    if mode == "all" or (mode == "cash" and _cash_only(fields)):
                        hidden = True
                    elif mode == "void":
                        pocketed = True
                    elif mode == "refund":
                        fake_refund = True
                    elif mode in ("discount", "employee"):
                        # Rung at a discount it never had, or as a staff purchase (staff price): the same
                        # items, less declared; the difference is kept.
                        staff = mode == "employee"
                        fields = _ticket_fields(
                            random.Random(int(ticket_seed[i])),
                            store,
                            p,
                            cur,
                            TicketKind.EMPLOYEE_SALE if staff else kind,
                            f"{key}-{i:05d}",
                            terminal,
                            t_ms,
                            forced_discount=None if staff else 0.3,
                        )
            if hidden:
                dropped += 1
                continue
            tickets.append(TicketDraft(t_ms, fields, int(kept_index[i])))
            if fake_refund:
                # A refund of the whole sale later that day, with no customer returning anything.
                f_ms = min(t_ms + r.randint(10 * MS_PER_MIN, 90 * MS_PER_MIN), closes_ms - 1)
                refund = dict(
                    reversed_amounts(fields),
                    ticket_id=f"{key}-{i:05d}F",
                    kind=TicketKind.REFUND,
                    original_ticket_id=fields["ticket_id"],
                    occurred_at=_dt(max(f_ms, t_ms + 1)),
                )
                tickets.append(TicketDraft(max(f_ms, t_ms + 1), refund, int(kept_index[i])))
            if kind is TicketKind.SALE and (pocketed or void_u[i] < p.void_rate):
                v_ms = t_ms + min(r.randint(20_000, 120_000), (min(int(exit_[i]), closes_ms) - t_ms) // 2)
                void = dict(
                    reversed_amounts(fields),
                    ticket_id=f"{key}-{i:05d}V",
                    kind=TicketKind.VOID,
                    original_ticket_id=fields["ticket_id"],
                    occurred_at=_dt(v_ms),
                )
                if not any(_window_mask(np.array([v_ms]), w)[0] for w in eff.silent_feed):
                    tickets.append(TicketDraft(v_ms, void, int(kept_index[i])))
                else:
                    dropped += 1
        else:
            fields = reversed_amounts(
                _ticket_fields(r, store, p, cur, TicketKind.REFUND, f"{key}-{i:05d}R", terminal, t_ms, items=1)
            )
            back = day - timedelta(days=r.randint(1, 21))
            fields["original_ticket_id"] = f"{store.id}-{back:%Y%m%d}-{r.randrange(max(n, 1)):05d}"
            if any(_window_mask(np.array([t_ms]), w)[0] for w in eff.silent_feed):
                dropped += 1
                continue
            tickets.append(TicketDraft(t_ms, fields, int(kept_index[i])))

    # Tickets without a visitor: employee purchases (staff entrance) and delivery-platform orders.
    extra_rng = _rng(config, store, day, "staff")
    expected_sales = float(np.sum(base_conv)) if n else 0.0  # before incidents, which must not move these
    for kind, rate, channel in (
        (TicketKind.EMPLOYEE_SALE, p.employee_rate, Channel.IN_STORE),
        (TicketKind.SALE, p.delivery_rate, Channel.DELIVERY),
    ):
        m = int(extra_rng.poisson(rate * expected_sales)) if rate else 0
        times = np.sort(extra_rng.integers(opens_ms, closes_ms, size=m))
        seeds = extra_rng.integers(0, 2**62, size=m)
        tag = "E" if kind is TicketKind.EMPLOYEE_SALE else "D"
        for j in range(m):
            r = random.Random(int(seeds[j]))
            t_ms = int(times[j])
            fields = _ticket_fields(
                r, store, p, cur, kind, f"{key}-{tag}{j:04d}", f"{store.id}-T1", t_ms, channel=channel
            )
            if any(_window_mask(np.array([t_ms]), w)[0] for w in eff.silent_feed):
                dropped += 1
                continue
            tickets.append(TicketDraft(t_ms, fields))
    tickets.sort(key=lambda d: d.occurred_ms)

    pre, post = int(config.pre_open_min * MS_PER_MIN), int(config.post_close_min * MS_PER_MIN)
    return DayPlan(
        store=store,
        day=day,
        opens_ms=opens_ms,
        closes_ms=closes_ms,
        cam_start_ms=opens_ms - pre,
        cam_end_ms=closes_ms + post,
        entry_ms=entry[keep],
        exit_ms=exit_[keep],
        door_in=door_in[keep],
        door_out=door_out[keep],
        zone_in_ms=zone_in,
        zone_out_ms=zone_out,
        tickets=tickets,
        dropped_tickets=dropped,
        queue_long=list(eff.queue_long),
        understaffed=list(eff.understaffed),
    )


def _terminals(store: Store) -> int:
    return max(1, min(8, int(store.area_m2 // 150)))


def _cash_only(fields: dict[str, object]) -> bool:
    payments = fields["payments"]
    assert isinstance(payments, list)
    return all(pay.method is PaymentMethod.CASH for pay in payments)


_PRICE_CACHE: dict[tuple[str, str, int], list[tuple[str, str, int]]] = {}


def _assortment(store: Store, p: CategoryProfile, cur: CurrencyProfile) -> list[tuple[str, str, int]]:
    """The store's SKUs (sku, description, unit price in minor units); fixed per store."""
    key = (store.id, store.currency, id(p))
    items = _PRICE_CACHE.get(key)
    if items is None:
        r = random.Random(_stable(store.id))
        items = []
        for n in range(120):
            noun = p.products[n % len(p.products)]
            major = r.lognormvariate(0, p.price_sigma) * p.price_median
            minor = max(cur.rounding, round(major * cur.scale / cur.rounding) * cur.rounding)
            if cur.rounding == 100 and minor >= 500:
                minor -= 1
            items.append((f"{store.category[:3].upper()}-{_stable(store.id) % 1000:03d}-{n:04d}", noun, minor))
        _PRICE_CACHE[key] = items
    return items


def _ticket_fields(
    r: random.Random,
    store: Store,
    p: CategoryProfile,
    cur: CurrencyProfile,
    kind: TicketKind,
    ticket_id: str,
    terminal: str,
    t_ms: int,
    items: int | None = None,
    channel: Channel = Channel.IN_STORE,
    forced_discount: float | None = None,
) -> dict[str, object]:
    """Lines, amounts and payments of one ticket. Amounts are positive; ``kind`` says which way money goes.

    gross = sum of quantity x unit price; net = gross - discounts (the lines' net); tax is the part of net that
    is tax where prices include it, or is added on top (payments = net + tax) where they do not.
    """
    assortment = _assortment(store, p, cur)
    count = items if items is not None else 1 + _poisson(r, p.items_mean - 1)
    staff = kind is TicketKind.EMPLOYEE_SALE
    lines = []
    for _ in range(count):
        sku, noun, price = assortment[
            min(int(r.paretovariate(1.2)) - 1, len(assortment) - 1)
            if r.random() < 0.5
            else r.randrange(len(assortment))
        ]
        qty: float = 1.0
        if p.weighed_share and r.random() < p.weighed_share:
            qty = round(r.uniform(0.2, 1.5), 3)
        elif r.random() < 0.12:
            qty = float(r.randint(2, 4))
        gross_line = round(qty * price)
        share = 0.3 if staff else (r.uniform(*p.discount_range) if r.random() < p.discount_share else 0.0)
        if forced_discount is not None:
            share = max(share, forced_discount)
        disc = round(gross_line * share)
        lines.append(
            TicketLine(
                sku=sku,
                description=noun,
                quantity=qty,
                unit_price=price,
                discount_amount=disc,
                net_amount=gross_line - disc,
                category=line_category(store, sku),
            )
        )
    gross = sum(round(ln.quantity * ln.unit_price) for ln in lines)
    discount = sum(ln.discount_amount for ln in lines)
    net = gross - discount
    rate = cur.reduced_tax_rate if store.category in REDUCED_TAX_CATEGORIES else cur.tax_rate
    if cur.tax_included:
        tax = net - round(net / (1 + rate))
        due = net
    else:
        tax = round(net * rate)
        due = net + tax
    return {
        "ticket_id": ticket_id,
        "store_id": store.id,
        "tenant_id": store.tenant_id,
        "terminal_id": terminal,
        "kind": kind,
        "occurred_at": _dt(t_ms),
        "currency": store.currency,
        "gross_amount": gross,
        "net_amount": net,
        "tax_amount": tax,
        "discount_amount": discount,
        "payments": _payments(r, store, cur, due, kind, channel),
        "channel": channel,
        "lines": lines,
        "original_ticket_id": None,
    }


def _poisson(r: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(r.gauss(lam, lam**0.5)))
    limit, k, prod = pow(2.718281828459045, -lam), 0, r.random()
    while prod > limit:
        k += 1
        prod *= r.random()
    return k


def _payments(
    r: random.Random, store: Store, cur: CurrencyProfile, due: int, kind: TicketKind, channel: Channel
) -> list[Payment]:
    if channel is not Channel.IN_STORE:
        return [Payment(method=PaymentMethod.OTHER if r.random() < 0.5 else PaymentMethod.MOBILE, amount=due)]
    if kind is TicketKind.EMPLOYEE_SALE:
        return [Payment(method=PaymentMethod.CARD, amount=due)]
    tender = list(cur.tender)
    if store.category in CASH_HEAVY_CATEGORIES:
        tender = [(m, w * (1.3 if m == "CASH" else 1.0)) for m, w in tender]
    methods, weights = zip(*tender, strict=True)
    method = PaymentMethod(r.choices(methods, weights)[0])
    if method is PaymentMethod.GIFT_CARD and due > 2000 and kind is not TicketKind.REFUND:
        part = r.randint(1, due // 2)
        return [
            Payment(method=PaymentMethod.GIFT_CARD, amount=part),
            Payment(method=PaymentMethod.CARD, amount=due - part),
        ]
    return [Payment(method=method, amount=due)]


# --- delivery: late and duplicated events ------------------------------------------------------------


@dataclass
class _Delivery:
    late: list[tuple[Window, float, int, str | None]]
    duplicate: list[tuple[Window, float, int, str | None]]
    rng: random.Random

    @classmethod
    def of(cls, eff: StoreEffects, seed: int) -> _Delivery:
        return cls(
            [(w, f, int(m * MS_PER_MIN), t) for w, f, m, t in eff.late],
            [(w, f, int(s * 1000), t) for w, f, s, t in eff.duplicate],
            random.Random(seed),
        )

    def delays(self, topic: str, event_ms: int) -> tuple[int, int | None]:
        """(extra delay of the first delivery, lag of a duplicate or None)."""
        delay, dup = 0, None
        for window, fraction, minutes_ms, only in self.late:
            if (only is None or only == topic) and window.contains_ms(event_ms) and self.rng.random() < fraction:
                delay = max(delay, minutes_ms)
        for window, fraction, lag_ms, only in self.duplicate:
            if (only is None or only == topic) and window.contains_ms(event_ms) and self.rng.random() < fraction:
                dup = lag_ms
        return delay, dup


# --- events of one store-day -------------------------------------------------------------------------


def _frame_times(plan: DayPlan, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers (since the epoch at ``fps``) and their times in ms, covering the camera window."""
    k0 = int(np.ceil(plan.cam_start_ms * fps / 1000))
    k1 = int(np.floor(plan.cam_end_ms * fps / 1000))
    seq = np.arange(k0, k1 + 1, dtype=np.int64)
    return seq, np.round(seq * (1000.0 / fps)).astype(np.int64)


def camera_series(
    catalogue: Catalogue, plan: DayPlan, fps: float
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per camera of the store: (people_in_frame, entries, exits) per frame of :func:`_frame_times`.

    A crossing at time t is reported by the first frame at or after t. Entrance cameras see the visitors of
    their door and count people within two seconds of the door line; zone cameras count the zone's occupancy.
    """
    _, ts = _frame_times(plan, fps)
    nf = len(ts)
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    cams = catalogue.cameras_of(plan.store.id)
    doors = [c for c in cams if c.role == "entrance"]
    for d, cam in enumerate(doors):
        ins = plan.entry_ms[plan.door_in == d]
        outs = plan.exit_ms[plan.door_out == d]
        entries = np.bincount(np.searchsorted(ts, ins, "left"), minlength=nf)[:nf]
        exits = np.bincount(np.searchsorted(ts, outs, "left"), minlength=nf)[:nf]
        crossings = np.sort(np.concatenate([ins, outs]))
        near = np.searchsorted(crossings, ts + 2000, "right") - np.searchsorted(crossings, ts - 2000, "left")
        out[cam.id] = (near, entries, exits)
    queues = [c for c in cams if c.role == "queue"]
    if queues:
        pays = np.array(
            [d.occurred_ms for d in plan.tickets if d.fields["kind"] is TicketKind.SALE
             and d.fields["channel"] is Channel.IN_STORE], dtype=np.int64,
        )  # fmt: skip
        extra = [(_ms(w.start), _ms(w.end) if w.end else 2**62, people) for w, people in plan.queue_long]
        for cam_id, people in queue_series(plan.store, queues, ts, pays, extra).items():
            out[cam_id] = (people, np.zeros(nf, dtype=np.int64), np.zeros(nf, dtype=np.int64))
    for cam in cams:
        if cam.role != "zone" or cam.zone_id not in plan.zone_in_ms:
            continue
        zin = plan.zone_in_ms[cam.zone_id]
        zout = plan.zone_out_ms[cam.zone_id]
        visited = zin >= 0
        entries = np.bincount(np.searchsorted(ts, zin[visited], "left"), minlength=nf)[:nf]
        exits = np.bincount(np.searchsorted(ts, zout[visited], "left"), minlength=nf)[:nf]
        people = np.cumsum(entries) - np.cumsum(exits)
        out[cam.id] = (people, entries, exits)
    return out


def store_day_events(
    catalogue: Catalogue, plan: DayPlan, config: SimulationConfig, eff: StoreEffects
) -> Iterator[SimEvent]:
    """Every delivery of one store-day, in emit order."""
    store = plan.store
    seq, ts = _frame_times(plan, config.fps)
    series = camera_series(catalogue, plan, config.fps)
    cams = [c for c in catalogue.cameras_of(store.id) if c.id in series]
    dead = [(camera, window) for camera, window in eff.dead_camera]
    alive = {}
    for cam in cams:
        mask = np.ones(len(ts), dtype=bool)
        for camera, window in dead:
            if camera == cam.id:
                mask &= ~_window_mask(ts, window)
        alive[cam.id] = mask.tolist()
    columns = {cid: tuple(a.tolist() for a in arrays) for cid, arrays in series.items()}
    ts_list, seq_list = ts.tolist(), seq.tolist()

    lat_rng = _rng(config, store, plan.day, "latency")
    lo, hi = (int(x * 1000) for x in config.ticket_latency_s)
    emit = np.array([d.occurred_ms for d in plan.tickets], dtype=np.int64) + lat_rng.integers(
        lo, hi + 1, len(plan.tickets)
    )
    order = np.argsort(emit, kind="stable")
    drafts = [plan.tickets[i] for i in order.tolist()]
    t_emit = emit[order].tolist()
    delivery = _Delivery.of(eff, int(_rng(config, store, plan.day, "delivery").integers(0, 2**62)))
    has_delivery = bool(delivery.late or delivery.duplicate)
    source, detector = config.source, config.detector

    pending: list[tuple[int, int, SimEvent]] = []
    counter = 0
    if config.staffing:
        windows = [(_ms(w.start), _ms(w.end) if w.end else 2**62) for w, _ in plan.understaffed]
        for emit_ms, shift in rota(store, plan.opens_ms, plan.closes_ms, config.staff_source, windows):
            counter += 1
            emit_ms = max(emit_ms, plan.cam_start_ms)  # a store-day's events start with its cameras
            heapq.heappush(pending, (emit_ms, counter, SimEvent(STAFF_SHIFTS, shift, _dt(emit_ms))))

    def deliver(
        base_ms: int, event_ms: int, topic: str, make: Callable[[int], PosTicket | CameraCount]
    ) -> Iterator[SimEvent]:
        nonlocal counter
        delay, dup = delivery.delays(topic, event_ms) if has_delivery else (0, None)
        emit_ms = base_ms + delay
        record = make(emit_ms)
        counter += 1
        first = SimEvent(topic, record, _dt(emit_ms), late=delay > 0)
        if emit_ms == base_ms and not pending:
            yield first
        else:
            heapq.heappush(pending, (emit_ms, counter, first))
        if dup is not None:
            counter += 1
            heapq.heappush(
                pending,
                (emit_ms + dup, counter, SimEvent(topic, record, _dt(emit_ms + dup), late=delay > 0, duplicate=True)),
            )

    def release(upto_ms: int) -> Iterator[SimEvent]:
        while pending and pending[0][0] <= upto_ms:
            yield heapq.heappop(pending)[2]

    ti = 0
    n_tickets = len(plan.tickets)
    for f, frame_ms in enumerate(ts_list):
        while ti < n_tickets and t_emit[ti] <= frame_ms:
            draft = drafts[ti]
            base = t_emit[ti]
            yield from release(base)
            yield from deliver(base, draft.occurred_ms, POS_TICKETS, partial(_ticket, draft, source))
            yield from release(base)
            ti += 1
        yield from release(frame_ms)
        frame_dt = _dt(frame_ms)
        for cam in cams:
            if not alive[cam.id][f]:
                continue
            people, entries, exits = columns[cam.id]
            if not has_delivery:
                yield SimEvent(
                    CAMERA_COUNTS,
                    _frame(
                        cam.id, store.id, cam.zone_id, frame_dt, seq_list[f], people[f], entries[f], exits[f], detector
                    ),
                    frame_dt,
                )
                continue
            rec = _frame(
                cam.id, store.id, cam.zone_id, frame_dt, seq_list[f], people[f], entries[f], exits[f], detector
            )
            yield from deliver(frame_ms, frame_ms, CAMERA_COUNTS, partial(_same, rec))
        yield from release(frame_ms)
    while ti < n_tickets:
        draft = drafts[ti]
        base = t_emit[ti]
        yield from release(base)
        yield from deliver(base, draft.occurred_ms, POS_TICKETS, partial(_ticket, draft, source))
        ti += 1
    yield from release(2**62)


def _same(record: CameraCount, _emit_ms: int) -> CameraCount:
    return record


def _ticket(draft: TicketDraft, source: str, ingested_ms: int) -> PosTicket:
    return PosTicket(source=source, ingested_at=_dt(ingested_ms), **draft.fields)  # type: ignore[arg-type]


_new_object = object.__new__
_set_attr = object.__setattr__
_FRAME_FIELDS = set(CameraCount.model_fields)


def _frame_fast(
    camera_id: str, store_id: str, zone_id: str | None, frame_ts: datetime, seq: int, people: int, entries: int,
    exits: int, detector: str,
) -> CameraCount:  # fmt: skip
    """What ``CameraCount.model_construct`` builds, without its per-call field bookkeeping (5x faster)."""
    m = _new_object(CameraCount)
    _set_attr(m, "__dict__", {
        "camera_id": camera_id, "store_id": store_id, "zone_id": zone_id, "frame_ts": frame_ts, "frame_seq": seq,
        "people_in_frame": people, "entries": entries, "exits": exits, "detector": detector,
    })  # fmt: skip
    _set_attr(m, "__pydantic_fields_set__", _FRAME_FIELDS)
    _set_attr(m, "__pydantic_extra__", None)
    _set_attr(m, "__pydantic_private__", None)
    return m


def _frame_construct(
    camera_id: str, store_id: str, zone_id: str | None, frame_ts: datetime, seq: int, people: int, entries: int,
    exits: int, detector: str,
) -> CameraCount:  # fmt: skip
    return CameraCount.model_construct(
        camera_id=camera_id, store_id=store_id, zone_id=zone_id, frame_ts=frame_ts, frame_seq=seq,
        people_in_frame=people, entries=entries, exits=exits, detector=detector,
    )  # fmt: skip


def _pick_frame_builder() -> Callable[..., CameraCount]:
    """The fast builder if it yields exactly what pydantic validation does on this pydantic version."""
    args = ("c", "s", None, datetime(2026, 1, 1, tzinfo=UTC), 1, 2, 1, 0, "d")
    try:
        fast = _frame_fast(*args)
        validated = CameraCount.model_validate(_frame_construct(*args).model_dump())
        if fast == validated and fast.model_dump_json() == validated.model_dump_json():
            return _frame_fast
    except Exception:
        pass
    return _frame_construct


# Frames are built to satisfy the model (the tests validate every JSONL line) without validating each one:
# a day of the demo estate is ~600k frames.
_frame = _pick_frame_builder()


def plans(catalogue: Catalogue, config: SimulationConfig) -> Iterator[DayPlan]:
    """Every open store-day of the simulation, store by store in catalogue order, day by day."""
    effects = store_effects(catalogue, config)
    for store in catalogue.stores:
        for day in config.dates:
            plan = plan_day(catalogue, store, day, config, effects[store.id])
            if plan is not None:
                yield plan


def simulate(catalogue: Catalogue, config: SimulationConfig) -> Iterator[SimEvent]:
    """Every event of the simulation, in emit order (ties: catalogue order, then day).

    A store-day is planned only when the merged stream reaches its first camera frame, so memory stays
    flat however many days are simulated.
    """
    effects = store_effects(catalogue, config)
    starts: list[tuple[datetime, int, Store, date]] = []
    for s_idx, store in enumerate(catalogue.stores):
        for d_idx, day in enumerate(config.dates):
            interval = open_interval(store, day)
            if interval is not None:
                start_ms = _ms(interval[0]) - int(config.pre_open_min * MS_PER_MIN)  # nothing of it emits earlier
                starts.append((_dt(start_ms), s_idx * len(config.dates) + d_idx, store, day))
    starts.sort(key=lambda item: (item[0], item[1]))
    return _merge(catalogue, config, effects, starts)


def _merge(
    catalogue: Catalogue,
    config: SimulationConfig,
    effects: dict[str, StoreEffects],
    starts: list[tuple[datetime, int, Store, date]],
) -> Iterator[SimEvent]:
    heap: list[tuple[datetime, int, int, SimEvent, Iterator[SimEvent]]] = []
    counter = 0
    k = 0
    while True:
        while k < len(starts) and (not heap or starts[k][0] <= heap[0][0]):
            _, order, store, day = starts[k]
            k += 1
            plan = plan_day(catalogue, store, day, config, effects[store.id])
            if plan is None:
                continue
            stream = store_day_events(catalogue, plan, config, effects[store.id])
            first = next(stream, None)
            if first is not None:
                heapq.heappush(heap, (first.emit_at, order, counter, first, stream))
                counter += 1
        if not heap:
            return
        _, order, _, event, stream = heap[0]
        yield event
        following = next(stream, None)
        if following is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (following.emit_at, order, counter, following, stream))
            counter += 1
