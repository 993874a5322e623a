"""Incidents the simulator can inject, parsed from CLI strings or a YAML scenario, and their ground truth.

An incident string is ``KIND:key=value,key=value``, for example
``sales-drop:store=wg-volt,at=2026-03-29T14,factor=0.2``. Times (``at``) are store-local wall-clock times;
durations (``for``) are ``90m``, ``2h``, ``1d`` or a number of hours.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.catalogue import Catalogue, Store
from tillflow.documents import validation_reason
from tillflow.errors import ConfigError

IncidentKind = Literal[
    "sales-drop",
    "traffic-drop",
    "underreporting",
    "silent-feed",
    "dead-camera",
    "late",
    "duplicate",
    "understaffed",
    "queue-long",
]

EXPECTED_ALERT: dict[str, str | None] = {
    "sales-drop": "SALES_DROP",
    "traffic-drop": "TRAFFIC_DROP",
    "underreporting": "UNDERREPORTING",
    "silent-feed": "FEED_SILENT",
    "dead-camera": "CAMERA_SILENT",
    "late": None,
    "duplicate": None,
    "understaffed": "UNDERSTAFFED",
    "queue-long": "QUEUE_LONG",
}
"""The alert kind the streams should raise for each incident (late and duplicated events raise none)."""

_DEFAULTS: dict[str, dict[str, Any]] = {
    "sales-drop": {"factor": 0.2, "duration_h": 1.0},
    "traffic-drop": {"factor": 0.3, "duration_h": 1.0},
    "underreporting": {"share": 0.5, "mode": "cash"},
    "silent-feed": {"duration_h": 2.0},
    "dead-camera": {},
    "late": {"fraction": 0.05, "minutes": 20.0},
    "duplicate": {"fraction": 0.02, "lag_s": 30.0},
    "understaffed": {"factor": 0.55, "duration_h": 1.0},
    "queue-long": {"factor": 8.0, "duration_h": 0.25},
}


class IncidentError(ConfigError):
    """An incident that cannot be parsed or does not fit the catalogue; the message says which and why."""


def parse_duration(text: str | float | int) -> float:
    """Hours from ``90m``, ``2h``, ``1d``, ``45s`` or a bare number of hours."""
    if isinstance(text, int | float):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (use 90m, 2h, 1d or a number of hours)")
    value, unit = float(m.group(1)), m.group(2) or "h"
    return value * {"s": 1 / 3600, "m": 1 / 60, "h": 1.0, "d": 24.0}[unit]


class Incident(BaseModel):
    """One injected fault. Which keys apply depends on ``kind``:

    - ``sales-drop``: ``store``, ``at`` (local hour), ``factor`` (conversion multiplier, 0.2), ``for`` (1h).
    - ``traffic-drop``: ``store``, ``at``, ``factor`` (visitor multiplier, 0.3), ``for`` (1h).
    - ``underreporting``: ``store`` or ``tenant``, ``at`` (from; default the start), ``share`` (0.5), ``for``
      (default: to the end), ``mode``: ``cash`` (that share of cash-only sales is never recorded), ``all``
      (that share of every sale is never recorded: the tenant declares 1 - share of its sales), ``void``
      (that share of sales is voided after the customer paid: the money is kept, the void rate rises),
      ``refund`` (that share of sales is refunded in full later that day with nothing returned: the refund
      rate rises), ``discount`` (that share of sales is rung with a 30 % discount it never had: the share of
      discounted sales rises) or ``employee`` (that share of sales is rung as an employee sale at staff price).
    - ``silent-feed``: ``store``, ``at``, ``for`` (2h): no tickets are delivered while cameras count.
    - ``dead-camera``: ``camera`` (or ``store``: all its cameras), ``at``, ``for`` (default: to the end).
    - ``late``: ``fraction`` (0.05) of events delivered ``minutes`` (20) late; optional ``store``, ``topic``,
      ``at``/``for`` window.
    - ``duplicate``: ``fraction`` (0.02) of events emitted twice, the copy ``lag`` seconds (30) later; optional
      ``store``, ``topic``, ``at``/``for``.
    - ``understaffed``: ``store``, ``at``, ``for`` (1h): all floor staff but one off the floor, conversion times
      ``factor`` (0.55).
    - ``queue-long``: ``store``, ``at``, ``for`` (15m): ``factor`` (8) more people waiting at the tills.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: IncidentKind
    store: str | None = None
    tenant: str | None = None
    camera: str | None = None
    at: datetime | None = None
    """Store-local wall-clock time (naive)."""
    duration_h: float | None = Field(None, alias="for", gt=0)
    factor: float | None = Field(None, ge=0)
    share: float | None = Field(None, ge=0, le=1)
    fraction: float | None = Field(None, ge=0, le=1)
    minutes: float | None = Field(None, gt=0)
    lag_s: float | None = Field(None, alias="lag", gt=0)
    topic: Literal["pos.tickets", "camera.counts"] | None = None
    mode: Literal["cash", "all", "void", "refund", "discount", "employee"] | None = None

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("for", "duration_h", "duration"):
                if key in data and data[key] is not None:
                    data["for"] = parse_duration(data.pop(key))
            for key in ("at", "from"):
                value = data.pop(key, None)
                if isinstance(value, date) and not isinstance(value, datetime):
                    value = datetime.combine(value, time())
                if isinstance(value, str):
                    try:
                        value = datetime.fromisoformat(value.strip())
                    except ValueError:
                        raise ValueError(f"{key}={value!r} is not an ISO local time like 2026-03-29T14") from None
                if value is not None:
                    if value.tzinfo is not None:
                        raise ValueError(f"{key}={value.isoformat()}: give store-local time without an offset")
                    data["at"] = value
        return data

    @model_validator(mode="after")
    def _needs(self) -> Incident:
        needs_store_at = ("sales-drop", "traffic-drop", "silent-feed", "understaffed", "queue-long")
        if self.kind in needs_store_at and (self.store is None or self.at is None):
            raise ValueError(f"{self.kind} needs store= and at=")
        if self.kind == "underreporting" and self.store is None and self.tenant is None:
            raise ValueError("underreporting needs store= or tenant=")
        if self.kind == "dead-camera" and self.camera is None and self.store is None:
            raise ValueError("dead-camera needs camera= or store=")
        return self

    def param(self, name: str) -> Any:
        """A parameter, or the kind's default."""
        value = getattr(self, name)
        return _DEFAULTS[self.kind].get(name) if value is None else value

    def spec(self) -> str:
        """The CLI string form of this incident."""
        parts = []
        for name, key in (
            ("store", "store"), ("tenant", "tenant"), ("camera", "camera"), ("topic", "topic"),
            ("at", "at"), ("duration_h", "for"), ("factor", "factor"), ("share", "share"),
            ("fraction", "fraction"), ("minutes", "minutes"), ("lag_s", "lag"), ("mode", "mode"),
        ):  # fmt: skip
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{key}={value.isoformat(timespec='minutes') if name == 'at' else value}")
        return f"{self.kind}:{','.join(parts)}"


def _validation_message(text: str, exc: ValidationError) -> str:
    return f"incident {text!r}: {validation_reason(exc)}"


def parse_incident(text: str) -> Incident:
    """Parse ``KIND:key=value,...``."""
    kind, _, rest = text.strip().partition(":")
    data: dict[str, Any] = {"kind": kind.strip()}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise IncidentError(f"incident {text!r}: {part!r} is not key=value")
        data[key.strip()] = value.strip()
    try:
        return Incident.model_validate(data)
    except ValidationError as exc:
        raise IncidentError(_validation_message(text, exc)) from None


def incident_from(item: str | dict[str, Any]) -> Incident:
    """An incident from a CLI string or a scenario mapping."""
    if isinstance(item, str):
        return parse_incident(item)
    try:
        return Incident.model_validate(item)
    except ValidationError as exc:
        raise IncidentError(_validation_message(str(item), exc)) from None


class Window(BaseModel):
    """A UTC interval ``[start, end)``; ``end`` None means to the end of the simulation."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime | None

    def contains_ms(self, ms: int) -> bool:
        start = int(self.start.timestamp() * 1000)
        return ms >= start and (self.end is None or ms < int(self.end.timestamp() * 1000))


class InjectedIncident(BaseModel):
    """Ground truth of one incident on one store: where, when (UTC) and which alert it should raise.

    ``hours`` lists the UTC starts of the store-local hours the incident touches while the store is open.
    """

    model_config = ConfigDict(frozen=True)

    kind: str
    spec: str
    store_id: str | None
    camera_id: str | None = None
    start: datetime | None
    end: datetime | None
    hours: tuple[datetime, ...] = ()
    local_hours: tuple[str, ...] = ()
    expected_alert: str | None
    params: dict[str, float | str] = Field(default_factory=dict)


def local_to_utc(store: Store, local: datetime) -> datetime:
    """A store-local wall-clock time as UTC (a time skipped by DST lands after the gap)."""
    return local.replace(tzinfo=store.tz).astimezone(UTC)


def local_day_hours(store: Store, day: date) -> list[datetime]:
    """UTC starts of every local hour of ``day`` at ``store``: 23 on a spring-forward day, 25 on a fall-back day."""
    start = datetime.combine(day, time(), tzinfo=store.tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=store.tz).astimezone(UTC)
    hours = []
    t = start
    while t < end:
        hours.append(t)
        t += timedelta(hours=1)
    return hours


def open_interval(store: Store, day: date) -> tuple[datetime, datetime] | None:
    """Opening and closing instants (UTC) of ``store`` on local date ``day``; None when closed."""
    hours = store.hours_on(day.weekday())
    if hours is None:
        return None
    opens = local_to_utc(store, datetime.combine(day, hours.open))
    if store.opening_hours is None:
        closes = datetime.combine(day + timedelta(days=1), time(), tzinfo=store.tz).astimezone(UTC)
    else:
        closes = local_to_utc(store, datetime.combine(day, hours.close))
    return opens, closes


def open_hours_in(store: Store, days: list[date], window: Window) -> list[datetime]:
    """UTC starts of the local hours in which the store is open and which overlap ``window``."""
    result = []
    for day in days:
        interval = open_interval(store, day)
        if interval is None:
            continue
        opens, closes = interval
        for h in local_day_hours(store, day):
            end = h + timedelta(hours=1)
            if end <= opens or h >= closes:
                continue
            if end <= window.start or (window.end is not None and h >= window.end):
                continue
            result.append(h)
    return result


def _stores_for(incident: Incident, catalogue: Catalogue) -> list[Store]:
    if incident.camera is not None:
        try:
            return [catalogue.store(catalogue.camera(incident.camera).store_id)]
        except KeyError as exc:
            raise IncidentError(f"incident {incident.spec()!r}: {exc.args[0]}") from None
    if incident.store is not None:
        try:
            return [catalogue.store(incident.store)]
        except KeyError as exc:
            raise IncidentError(f"incident {incident.spec()!r}: {exc.args[0]}") from None
    if incident.tenant is not None:
        stores = [s for s in catalogue.stores if s.tenant_id == incident.tenant]
        if not stores:
            raise IncidentError(f"incident {incident.spec()!r}: no store of tenant {incident.tenant!r}")
        return stores
    return list(catalogue.stores)


def resolve(incident: Incident, catalogue: Catalogue, days: list[date]) -> list[tuple[Store, str | None, Window]]:
    """The stores (and camera) an incident applies to, each with its UTC window (no ``at``: from the first
    local midnight of the simulation at that store)."""
    stores = _stores_for(incident, catalogue)
    cameras: list[str | None] = [None]
    if incident.kind == "dead-camera":
        cameras = [incident.camera] if incident.camera else [c.id for c in catalogue.cameras_of(stores[0].id)]
        if not cameras:
            raise IncidentError(f"incident {incident.spec()!r}: store {stores[0].id!r} has no camera")
    duration = incident.param("duration_h")
    out = []
    for store in stores:
        at = incident.at if incident.at is not None else datetime.combine(days[0], time())
        start = local_to_utc(store, at)
        end = start + timedelta(hours=duration) if duration is not None else None
        for cam in cameras:
            out.append((store, cam, Window(start=start, end=end)))
    return out


def ground_truth(incidents: list[Incident], catalogue: Catalogue, days: list[date]) -> list[InjectedIncident]:
    """What was injected, per store (and camera), as concrete UTC windows and open store-hours."""
    truth = []
    for incident in incidents:
        params = {
            k: v
            for k in ("factor", "share", "fraction", "minutes", "lag_s", "topic", "mode")
            if (v := incident.param(k)) is not None
        }
        scoped = incident.kind not in ("late", "duplicate") or incident.store is not None
        for store, camera, window in resolve(incident, catalogue, days):
            if not scoped:
                truth.append(
                    InjectedIncident(
                        kind=incident.kind,
                        spec=incident.spec(),
                        store_id=None,
                        start=window.start,
                        end=window.end,
                        expected_alert=None,
                        params=params,
                    )
                )
                break
            hours = open_hours_in(store, days, window)
            truth.append(
                InjectedIncident(
                    kind=incident.kind,
                    spec=incident.spec(),
                    store_id=store.id,
                    camera_id=camera,
                    start=window.start,
                    end=window.end,
                    hours=tuple(hours),
                    local_hours=tuple(h.astimezone(store.tz).isoformat() for h in hours),
                    expected_alert=EXPECTED_ALERT[incident.kind],
                    params=params,
                )
            )
    return truth


def expected_alerts(truth: list[InjectedIncident]) -> set[tuple[str, str, datetime]]:
    """(alert kind, store id, UTC hour start) for every store-hour an alert should fire on."""
    return {
        (t.expected_alert, t.store_id, hour)
        for t in truth
        if t.expected_alert is not None and t.store_id is not None
        for hour in t.hours
    }
