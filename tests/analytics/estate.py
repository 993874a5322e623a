"""Simulated store-months loaded into ClickHouse the way the sinks land them: the simulator's tickets (mapped by
the ClickHouse sink's pure mapping) and hourly conversion rows built from the simulator's hourly truth."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from producers.simulator import SimulationConfig
from producers.simulator.simulation import plan_day, store_effects
from producers.simulator.truth import HourTruth, hourly_truth, plan_tickets
from schemas.catalogue import Catalogue
from schemas.models import HourlyConversion, PosTicket
from schemas.topics import CONVERSION_HOURLY, POS_TICKETS
from sinks.clickhouse.mapping import COLUMNS, rows_for, timezones_of


def simulated(
    catalogue: Catalogue, stores: Sequence[str], start: date, days: int, seed: int = 11, incidents: Sequence[str] = ()
) -> tuple[list[PosTicket], list[HourTruth]]:
    """Tickets and hourly truth of the given stores over ``days`` days from ``start``."""
    config = SimulationConfig(seed=seed, start=start, days=days, incidents=tuple(incidents))
    effects = store_effects(catalogue, config)
    tickets: list[PosTicket] = []
    hours: list[HourTruth] = []
    for store_id in stores:
        store = catalogue.store(store_id)
        for i in range(days):
            plan = plan_day(catalogue, store, start + timedelta(days=i), config, effects[store_id])
            if plan is None:
                continue
            day_tickets = plan_tickets(plan)
            tickets.extend(day_tickets)
            hours.extend(hourly_truth(plan))
    return tickets, hours


def hourly_record(catalogue: Catalogue, h: HourTruth) -> HourlyConversion:
    store = catalogue.store(h["store_id"])
    local = h["hour_start"].astimezone(store.tz)
    return HourlyConversion.model_validate({
        "store_id": store.id, "tenant_id": store.tenant_id, "mall_id": store.mall_id, "category": store.category,
        "hour_start": h["hour_start"], "local_hour": local.isoformat(), "timezone": store.timezone,
        "currency": store.currency, "visitors": h["visitors"], "exits": h["visitors"],
        "transactions": h["transactions"], "net_revenue": h["net_revenue"], "refunds": h["refunds"],
        "voids": h["voids"], "employee_sales": h["employee_sales"], "cash_amount": h["cash_amount"],
        "conversion": h["transactions"] / h["visitors"] if h["visitors"] else None,
        "is_final": True, "revision": 0, "updated_at": h["hour_start"] + timedelta(hours=1, minutes=10),
    })  # fmt: skip


def load(ch: Any, catalogue: Catalogue, tickets: Sequence[PosTicket], hours: Sequence[HourTruth]) -> None:
    tz = timezones_of(catalogue)
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for t in tickets:
        for table, table_rows in rows_for(POS_TICKETS, t, tz).items():
            if table == "tickets":
                rows.setdefault(table, []).extend(table_rows)
    for h in hours:
        rows.setdefault("conversion_hourly", []).extend(
            rows_for(CONVERSION_HOURLY, hourly_record(catalogue, h), tz)["conversion_hourly"]
        )
    for table, table_rows in rows.items():
        ch.insert(table, table_rows, column_names=COLUMNS[table])
