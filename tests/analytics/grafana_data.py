"""Rows for the malls dashboard and the store dashboard's forecast panel, added to the one-day simulation of
tests/sinks/test_grafana.py: statements issued from that day's tickets, the demo campaign calendar, and a
forecast for each westgate store-hour of the day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from analytics.campaigns import load_calendar
from analytics.forecast import HourForecast, records
from analytics.leases import load_leases
from analytics.warehouse import issue_statements, load_campaigns, mall_statements
from schemas.catalogue import load_catalogue
from schemas.topics import FORECAST_HOURLY
from sinks.clickhouse.mapping import COLUMNS, rows_for, timezones_of

CATALOGUE_DIR = Path(__file__).resolve().parents[2] / "deploy" / "catalogue"


def add_malls_data(ch: Any, day: date) -> None:
    catalogue = load_catalogue(CATALOGUE_DIR / "demo-estate.yaml")
    leases = load_leases(CATALOGUE_DIR / "demo-leases.yaml", catalogue)
    month = day.replace(day=1)
    issue_statements(ch, mall_statements(ch, catalogue, leases, "westgate", month), datetime.now(UTC))
    load_campaigns(ch, load_calendar(CATALOGUE_DIR / "demo-campaigns.yaml", catalogue), catalogue, datetime.now(UTC))
    tz = timezones_of(catalogue)
    rows = []
    for store in catalogue.stores:
        if store.mall_id != "westgate":
            continue
        issued = datetime.combine(day, datetime.min.time(), store.tz).astimezone(UTC)
        hours = [HourForecast(day, h, h, 10.0 + h, 1000.0 * h) for h in range(9, 21)]
        for record in records(store, hours, issued):
            rows += rows_for(FORECAST_HOURLY, record, tz)["forecast_hourly"]
    ch.insert("forecast_hourly", rows, column_names=COLUMNS["forecast_hourly"])
