"""The morning briefing's figures and text (pure: rows in, a :class:`Briefing` out).

Deterministic templates, no randomness and no clock: the same rows always give the same text. Inputs are the
store's final hours of the day (``conversion_hourly``, store level), its ``storeops_hourly`` store rows, the
day totals of the same weekday in earlier weeks (the baseline), and the alerts whose hour falls in the day.
An optional phrasing hook may rewrite the text (off by default; the template text is what is stored).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from statistics import mean
from typing import Any

TEMPLATE = "morning-v1"
GAP_FLAGS = {"NO_CAMERA_DATA": "no camera data", "NO_POS_DATA": "no POS data"}
SILENCE_KINDS = ("FEED_SILENT", "CAMERA_SILENT")


@dataclass(frozen=True)
class DayTotals:
    day: date
    visitors: int
    transactions: int
    net_revenue: int

    @property
    def conversion(self) -> float | None:
        return self.transactions / self.visitors if self.visitors else None

    @property
    def avg_ticket(self) -> float | None:
        return self.net_revenue / self.transactions if self.transactions else None


@dataclass
class Briefing:
    store_id: str
    local_date: date
    timezone: str
    text: str
    figures: dict[str, Any]
    hour_ids: list[str]
    alert_ids: list[str]
    template: str = TEMPLATE
    hours: list[dict[str, Any]] = field(default_factory=list)
    """The hours it read (for the chart): local_hour, visitors, conversion."""
    alerts: list[dict[str, Any]] = field(default_factory=list)


def money(minor: float | None, currency: str) -> str:
    return "-" if minor is None else f"{minor / 100:,.2f} {currency}"


def _pct_change(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "no baseline"
    return f"{(value / base - 1):+.0%} vs usual"


def _pp_change(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "no baseline"
    return f"{(value - base) * 100:+.1f} pts vs usual"


def _clock(local_hour: str) -> str:
    return local_hour[11:16] if len(local_hour) >= 16 else local_hour


def hour_id(store_id: str, hour_start: datetime) -> str:
    return f"{store_id}|{hour_start.astimezone(UTC).isoformat()}"


def compose(
    *,
    store_id: str,
    store_name: str,
    timezone: str,
    currency: str,
    day: date,
    hours: Sequence[Mapping[str, Any]],
    ops: Mapping[datetime, Mapping[str, Any]],
    baseline: Sequence[DayTotals],
    alerts: Sequence[Mapping[str, Any]],
    queue_people: float,
    phrase: Callable[[Briefing], str] | None = None,
    zones: Sequence[Mapping[str, Any]] = (),
) -> Briefing:
    """The briefing of ``store_id`` for its local ``day``; ``hours`` ordered by hour_start."""
    visitors = sum(int(h["visitors"]) for h in hours)
    tx = sum(int(h["transactions"]) for h in hours)
    net = sum(int(h["net_revenue"]) for h in hours)
    totals = DayTotals(day, visitors, tx, net)
    lines = [f"{store_name}: {day:%A %d %B %Y}"]
    figures: dict[str, Any] = {
        "visitors": visitors, "transactions": tx, "net_revenue": net, "conversion": totals.conversion,
        "avg_ticket": totals.avg_ticket, "baseline_days": [b.day.isoformat() for b in baseline],
    }  # fmt: skip
    if not hours:
        lines.append("No hours were recorded for this day.")
    else:
        base_v = mean(b.visitors for b in baseline) if baseline else None
        base_net = mean(b.net_revenue for b in baseline) if baseline else None
        convs = [b.conversion for b in baseline if b.conversion is not None]
        tickets = [b.avg_ticket for b in baseline if b.avg_ticket is not None]
        base_conv = mean(convs) if convs else None
        base_ticket = mean(tickets) if tickets else None
        figures |= {"baseline_visitors": base_v, "baseline_net_revenue": base_net,
                    "baseline_conversion": base_conv, "baseline_avg_ticket": base_ticket}  # fmt: skip
        conv = "-" if totals.conversion is None else f"{totals.conversion:.1%}"
        lines.append(
            f"Sales {money(net, currency)} ({_pct_change(net, base_net)}); visitors {visitors:,} "
            f"({_pct_change(visitors, base_v)}); conversion {conv} ({_pp_change(totals.conversion, base_conv)}); "
            f"average ticket {money(totals.avg_ticket, currency)} ({_pct_change(totals.avg_ticket, base_ticket)})."
        )
        typical = sorted(int(h["visitors"]) for h in hours)[len(hours) // 2]
        ranked = [h for h in hours if int(h["visitors"]) >= max(10, 0.3 * typical)]
        if len(ranked) >= 2:
            by_conv = sorted(ranked, key=lambda h: (int(h["transactions"]) / int(h["visitors"]), h["hour_start"]))
            worst, best = by_conv[0], by_conv[-1]
            figures |= {"best_hour": best["local_hour"], "worst_hour": worst["local_hour"]}
            lines.append(
                f"Best hour {_clock(best['local_hour'])} ({int(best['transactions']) / int(best['visitors']):.1%} of "
                f"{int(best['visitors'])} visitors); worst hour {_clock(worst['local_hour'])} "
                f"({int(worst['transactions']) / int(worst['visitors']):.1%} of {int(worst['visitors'])})."
            )
        lines += _staffing(hours, ops, currency, figures)
        lines += _queues(hours, ops, queue_people, figures)
        lines += _zones(zones, currency, figures)
    lines += _alerts(alerts, timezone, figures)
    lines += _gaps(hours, alerts, figures)
    briefing = Briefing(
        store_id=store_id,
        local_date=day,
        timezone=timezone,
        text="\n".join(lines),
        figures=figures,
        hour_ids=[hour_id(store_id, h["hour_start"]) for h in hours],
        alert_ids=sorted({str(a["alert_id"]) for a in alerts}),
        hours=[
            {
                "local_hour": h["local_hour"],
                "visitors": int(h["visitors"]),
                "conversion": int(h["transactions"]) / int(h["visitors"]) if int(h["visitors"]) else None,
            }
            for h in hours
        ],
        alerts=[dict(a) for a in alerts],
    )
    if phrase is not None:
        briefing.text = phrase(briefing)
    return briefing


def _staffing(
    hours: Sequence[Mapping[str, Any]], ops: Mapping[datetime, Mapping[str, Any]], currency: str, fig: dict[str, Any]
) -> list[str]:
    staffed = [(h, ops[h["hour_start"]]) for h in hours if (ops.get(h["hour_start"]) or {}).get("staff_on_floor")]
    if not staffed:
        return ["Staffing: no shifts reported."]
    staff_hours = sum(float(o["staff_minutes"]) for _, o in staffed) / 60
    visitors = sum(int(h["visitors"]) for h, _ in staffed)
    net = sum(int(h["net_revenue"]) for h, _ in staffed)
    peak_h, peak_o = max(staffed, key=lambda p: (p[1]["visitors_per_staff"] or 0, p[0]["hour_start"]))
    fig |= {"staff_hours": staff_hours, "visitors_per_staff": visitors / staff_hours,
            "sales_per_labour_hour": net / staff_hours, "peak_visitors_per_staff": peak_o["visitors_per_staff"],
            "peak_staff_hour": peak_h["local_hour"]}  # fmt: skip
    return [
        f"Staffing: {staff_hours:.1f} staff hours on the floor, {visitors / staff_hours:.1f} visitors per staff "
        f"hour, sales {money(net / staff_hours, currency)} per labour hour; the stretched hour was "
        f"{_clock(peak_h['local_hour'])} with {peak_o['visitors_per_staff']:.1f} visitors per staff member."
    ]


def _queues(
    hours: Sequence[Mapping[str, Any]], ops: Mapping[datetime, Mapping[str, Any]], people: float, fig: dict[str, Any]
) -> list[str]:
    queued = [(h, ops[h["hour_start"]]) for h in hours if (ops.get(h["hour_start"]) or {}).get("queue_minutes")]
    if not queued:
        return []
    over = sum(int(o["queue_minutes_over"]) for _, o in queued)
    worst_h, worst_o = max(queued, key=lambda p: (p[1]["queue_max"] or 0, p[0]["hour_start"]))
    fig |= {"queue_minutes_over": over, "queue_max": worst_o["queue_max"], "queue_worst_hour": worst_h["local_hour"]}
    return [
        f"Queues: longest {worst_o['queue_max']:.0f} people at {_clock(worst_h['local_hour'])}; "
        f"{over} minutes over {people:g} people."
    ]


def _zones(zones: Sequence[Mapping[str, Any]], currency: str, fig: dict[str, Any]) -> list[str]:
    """Zone sales (lines attributed by category), with the zone camera's conversion where there is one."""
    if not zones or all(str(z["zone"]) == "unmapped" for z in zones):
        return []  # a store without a floor plan: every line is unmapped, nothing to compare
    parts = []
    for z in zones:
        visitors = z.get("visitors")
        conv = f", {int(z['transactions']) / int(visitors):.1%} of its visitors bought" if visitors else ""
        parts.append(f"{z['zone']} {money(int(z['net_revenue']), currency)}{conv}")
    fig["zones"] = {str(z["zone"]): int(z["net_revenue"]) for z in zones}
    return ["Zones: " + "; ".join(parts) + "."]


def _alerts(alerts: Sequence[Mapping[str, Any]], timezone: str, fig: dict[str, Any]) -> list[str]:
    fig["alerts"] = len(alerts)
    if not alerts:
        return ["Alerts: none."]
    from zoneinfo import ZoneInfo

    parts = []
    for a in sorted(alerts, key=lambda a: (a["hour_start"], str(a["kind"]))):
        local = a["hour_start"].astimezone(ZoneInfo(timezone))
        parts.append(f"{a['kind']} {local:%H:%M} ({str(a['state']).lower()})")
    return [f"Alerts ({len(alerts)}): " + "; ".join(parts) + "."]


def _gaps(hours: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]], fig: dict[str, Any]) -> list[str]:
    gaps = []
    for flag, words in GAP_FLAGS.items():
        flagged = [_clock(h["local_hour"]) for h in hours if flag in (h.get("quality_flags") or ())]
        if flagged:
            gaps.append(f"{words} in {len(flagged)} hour(s) ({', '.join(flagged)})")
    for kind in SILENCE_KINDS:
        n = sum(1 for a in alerts if a["kind"] == kind)
        if n:
            gaps.append(f"{n} {kind.lower().replace('_', ' ')} alert(s)")
    fig["data_gaps"] = gaps
    return ["Data gaps: " + ("; ".join(gaps) if gaps else "none") + "."]
