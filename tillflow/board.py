"""The demo's live board: the latest hourly conversion per store and the alerts, as rich renderables.

Pure state and rendering (no I/O): feed it decoded ``conversion.hourly`` and ``alerts`` records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


def _money(minor: int | float | None, currency: str | None) -> str:
    if minor is None:
        return "-"
    return f"{minor / 100:,.2f} {currency or ''}".strip()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@dataclass
class Board:
    """Newest revision of each store-hour (store-level rows only) and every alert's latest state."""

    hours: dict[tuple[str, datetime], dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: int = 0

    def add_conversion(self, rec: dict[str, Any]) -> None:
        if rec.get("zone_id") is not None:
            return
        key = (rec["store_id"], rec["hour_start"])
        old = self.hours.get(key)
        rank = (rec["revision"], rec["is_final"], rec["updated_at"])
        if old is None or rank >= (old["revision"], old["is_final"], old["updated_at"]):
            self.hours[key] = rec
        self.updates += 1

    def add_alert(self, rec: dict[str, Any]) -> None:
        self.alerts[rec["alert_id"]] = rec

    def latest_per_store(self) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for (store, hour), rec in self.hours.items():
            if store not in latest or hour > latest[store]["hour_start"]:
                latest[store] = rec
        return [latest[s] for s in sorted(latest)]

    def totals(self) -> dict[str, dict[str, Any]]:
        """Per store over final hours: visitors, transactions, revenue, conversion."""
        out: dict[str, dict[str, Any]] = {}
        for (store, _hour), rec in sorted(self.hours.items()):
            if not rec["is_final"]:
                continue
            t = out.setdefault(
                store, {"visitors": 0, "transactions": 0, "net_revenue": 0, "hours": 0, "currency": rec.get("currency")}
            )
            t["visitors"] += rec["visitors"]
            t["transactions"] += rec["transactions"]
            t["net_revenue"] += rec["net_revenue"]
            t["hours"] += 1
        for t in out.values():
            t["conversion"] = t["transactions"] / t["visitors"] if t["visitors"] else None
        return out

    def render(self, title: str = "tillflow: live conversion") -> Group:
        table = Table(title=title, title_justify="left")
        for col in ("store", "local hour", "state", "visitors", "buyers", "conversion", "revenue", "rev/m²"):
            table.add_column(col, justify="right" if col not in ("store", "local hour", "state") else "left")
        for rec in self.latest_per_store():
            state = "final" if rec["is_final"] else "live"
            if rec["revision"]:
                state += f" r{rec['revision']}"
            flags = " ⚑" if rec.get("quality_flags") else ""
            table.add_row(
                rec["store_id"],
                rec["local_hour"][:16].replace("T", " ") + rec["local_hour"][19:],
                state,
                str(rec["visitors"]),
                str(rec["transactions"]),
                _pct(rec.get("conversion")) + flags,
                _money(rec["net_revenue"], rec.get("currency")),
                "-" if rec.get("revenue_per_m2") is None else f"{rec['revenue_per_m2'] / 100:,.2f}",
            )
        alerts = Table(title="alerts", title_justify="left")
        for col in ("state", "kind", "store", "hour (UTC)", "message"):
            alerts.add_column(col)
        for rec in sorted(self.alerts.values(), key=lambda a: a["fired_at"])[-12:]:
            style = "red" if rec["state"] == "FIRING" else "green"
            alerts.add_row(
                Text(rec["state"], style=style),
                rec["kind"],
                rec["store_id"],
                rec["hour_start"].strftime("%Y-%m-%d %H:%M"),
                rec["message"],
            )
        return Group(table, alerts)
