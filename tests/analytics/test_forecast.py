"""Hourly forecasts: the model on histories with a known pattern, the forecast.hourly records (DST included), and
`tillflow forecast` from ClickHouse history to the topic on the real local broker and registry."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from analytics.forecast import Actual, forecast, naive, recent_level, records, shape
from schemas.catalogue import load_catalogue
from schemas.models import HourlyConversion
from schemas.serde import TopicSerde, registry_client
from schemas.topics import CONVERSION_HOURLY, FORECAST_HOURLY
from sinks.clickhouse.mapping import COLUMNS, rows_for, timezones_of
from tests.conftest import DEMO_CATALOGUE
from tests.sinks.kafka_helpers import read_all
from tillflow.cli import app
from tillflow.kafka import endpoints
from tillflow.settings import Settings

CATALOGUE = load_catalogue(DEMO_CATALOGUE)
TODAY = date(2026, 11, 19)  # a Thursday


def pattern(day: date, hour: int) -> Actual:
    """Visitors by weekday and hour (open 9-19), sales 10.00 per visitor."""
    if day.weekday() == 6 or not 9 <= hour < 20:
        return Actual(0.0, 0.0)
    v = (10 + day.weekday()) * (1 + (hour - 9) % 5)
    return Actual(float(v), 1000.0 * v)


def history(days: int, scale: float = 1.0, until: datetime | None = None) -> dict[tuple[date, int], Actual]:
    out = {}
    for i in range(days, 0, -1):
        day = TODAY - timedelta(days=i)
        for hour in range(9, 20):
            if day.weekday() != 6:
                out[(day, hour)] = pattern(day, hour)
    if until is not None:
        for hour in range(9, until.hour):
            a = pattern(TODAY, hour)
            out[(TODAY, hour)] = Actual(a.visitors * scale, a.sales * scale)
    return out


def test_a_steady_pattern_is_forecast_exactly() -> None:
    hist = history(60)
    now = datetime.combine(TODAY, datetime.min.time()) + timedelta(hours=6)
    got = forecast(hist, now)
    assert {(f.local_date, f.hour) for f in got} == {(d, h) for d in (TODAY, TODAY + timedelta(days=1))
                                                      for h in range(9, 20)}  # fmt: skip
    for f in got:
        expected = pattern(f.local_date, f.hour)
        assert f.visitors == pytest.approx(expected.visitors) and f.sales == pytest.approx(expected.sales)
    first = min(got, key=lambda f: (f.local_date, f.hour))
    assert (first.hour, first.horizon) == (9, 3)
    assert max(f.horizon for f in got) == 24 + 19 - 6
    assert naive(hist, TODAY, 12) == pattern(TODAY - timedelta(days=7), 12)


def test_today_running_high_lifts_the_rest_of_today_only() -> None:
    now = datetime.combine(TODAY, datetime.min.time()) + timedelta(hours=14)
    hist = history(60, scale=1.3, until=now)
    got = forecast(hist, now)
    today = [f for f in got if f.local_date == TODAY]
    assert [f.hour for f in today] == list(range(15, 20))  # hours starting after 14:00
    for f in today:
        ratio = f.visitors / pattern(TODAY, f.hour).visitors
        assert 1.1 < ratio < 1.3  # today's 1.3 so far, shrunk towards the recent level (1.0)
    tomorrow = [f for f in got if f.local_date == TODAY + timedelta(days=1)]
    assert all(f.visitors == pytest.approx(pattern(f.local_date, f.hour).visitors) for f in tomorrow)


def test_one_odd_day_barely_moves_the_shape_and_a_new_level_is_followed() -> None:
    hist = history(60)
    odd = TODAY - timedelta(days=7)
    for hour in range(9, 20):
        hist[(odd, hour)] = Actual(0.0, 0.0)  # a silent day (dead camera, holiday)
    s = shape(hist, TODAY)
    assert s[12].visitors == pytest.approx(pattern(TODAY, 12).visitors)  # trimmed away
    # Every day of the last week 20% busier: the level follows, shrunk by one day's volume.
    busy = history(60)
    for (day, hour), a in list(busy.items()):
        if day >= TODAY - timedelta(days=8):
            busy[(day, hour)] = Actual(a.visitors * 1.2, a.sales * 1.2)
    level = recent_level(busy, TODAY)
    assert 1.1 < level.visitors < 1.2 and level.visitors == pytest.approx(level.sales)


def test_records_keep_the_local_hour_across_dst() -> None:
    store = CATALOGUE.store("nyc-soho")
    from analytics.forecast import HourForecast

    # 1 November 2026: New York falls back from EDT (-4) to EST (-5) at 02:00.
    hours = [HourForecast(date(2026, 11, 1), h, h, 5.0, 1234.4) for h in (1, 3, 12)]
    got = records(store, hours, datetime(2026, 11, 1, 4, tzinfo=UTC))
    assert [r.local_hour for r in got] == ["2026-11-01T01:00:00-04:00", "2026-11-01T03:00:00-05:00",
                                           "2026-11-01T12:00:00-05:00"]  # fmt: skip
    assert [r.hour_start for r in got] == [datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 8, tzinfo=UTC),
                                           datetime(2026, 11, 1, 17, tzinfo=UTC)]  # fmt: skip
    assert got[0].net_revenue == 1234 and got[0].currency == "USD"


def _load_history(ch: Any, store_id: str, days: int) -> None:
    store = CATALOGUE.store(store_id)
    tz = timezones_of(CATALOGUE)
    rows = []
    for (day, hour), a in history(days).items():
        local = datetime.combine(day, datetime.min.time(), store.tz) + timedelta(hours=hour)
        record = HourlyConversion(
            store_id=store.id, mall_id=store.mall_id, category=store.category, hour_start=local,
            local_hour=local.isoformat(), timezone=store.timezone, currency=store.currency, visitors=int(a.visitors),
            exits=int(a.visitors), transactions=int(a.visitors) // 5, net_revenue=int(a.sales), refunds=0, voids=0,
            employee_sales=0, is_final=True, revision=0, updated_at=local + timedelta(hours=1),
        )  # fmt: skip
        rows += rows_for(CONVERSION_HOURLY, record, tz)["conversion_hourly"]
    ch.insert("conversion_hourly", rows, column_names=COLUMNS["conversion_hourly"])


def test_forecast_command_sends_to_the_topic(ch: Any, ch_settings: Settings, stack: Settings) -> None:
    _load_history(ch, "wg-fashion", 60)
    ep = endpoints(stack)
    env = {"TILLFLOW_STATE_DIR": str(ch_settings.state_dir),
           "TILLFLOW_CLICKHOUSE_DATABASE": ch_settings.clickhouse_database, "TILLFLOW_CATALOGUE": str(DEMO_CATALOGUE),
           "TILLFLOW_KAFKA_BOOTSTRAP": ep.bootstrap, "TILLFLOW_REGISTRY_URL": ep.registry_url}  # fmt: skip
    now = "2026-11-19T06:00:00+01:00"
    dry = CliRunner().invoke(app, ["forecast", "--store", "wg-fashion", "--now", now, "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "wg-fashion 2026-11-19T09:00:00+01:00 +3h visitors 13.0 sales 130.00" in dry.output
    sent = CliRunner().invoke(app, ["forecast", "--store", "wg-fashion", "--now", now], env=env)
    assert sent.exit_code == 0, sent.output
    assert "sent 22 hourly forecasts for 1 store to forecast.hourly" in sent.output
    serde = TopicSerde(registry_client(ep.registry_url), FORECAST_HOURLY)
    got = [serde.decode(value) for value, _ in read_all(stack, FORECAST_HOURLY, expect=22)]
    assert len(got) == 22
    first = min(got, key=lambda r: r["hour_start"])
    assert first["store_id"] == "wg-fashion" and first["visitors"] == pytest.approx(13.0)
    assert first["horizon_hours"] == 3 and first["net_revenue"] == 13000
    bad = CliRunner().invoke(app, ["forecast", "--store", "nowhere", "--dry-run"], env=env)
    assert bad.exit_code == 1 and "no store 'nowhere'" in bad.output


def test_every_issues_on_schedule_until_sigterm(tmp_path: Any) -> None:
    """`tillflow forecast --every` in its own process (chDB allows one process per data directory): it issues at
    once and then every interval, keeps going when there is nothing to forecast, and stops cleanly on SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "TILLFLOW_STATE_DIR": str(tmp_path),
           "TILLFLOW_CATALOGUE": str(DEMO_CATALOGUE), "COLUMNS": "200"}  # fmt: skip
    cli = [sys.executable, "-m", "tillflow"]
    migrated = subprocess.run([*cli, "clickhouse", "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    proc = subprocess.Popen([*cli, "forecast", "--store", "wg-fashion", "--every", "1", "--dry-run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    issued: list[str] = []
    deadline = time.monotonic() + 60
    try:
        assert proc.stdout is not None
        while len(issued) < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("issued"):
                issued.append(line)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert len(issued) == 2 and all("issued 0 hourly forecasts for 0 stores" in line for line in issued)
    assert proc.returncode == 0 and "stopped on SIGTERM" in stderr


def test_the_sink_lands_forecasts_and_the_panel_takes_the_latest_issue(
    stack: Settings, ch_settings: Settings, ch: Any, unique: str
) -> None:
    """forecast.hourly through the real broker and the ClickHouse sink into forecast_hourly: every issue kept, a
    replay adds nothing, and the latest issue of each hour is the one read back."""
    from analytics.forecast import HourForecast
    from sinks.clickhouse.service import build_sink
    from tests.sinks.kafka_helpers import make_topics, produce

    store = CATALOGUE.store("wg-fashion")
    morning = records(store, [HourForecast(TODAY, h, h - 6, 10.0 * h, 900.0 * h) for h in range(9, 20)],
                      datetime(2026, 11, 19, 5, tzinfo=UTC))  # fmt: skip
    noon = records(store, [HourForecast(TODAY, h, h - 12, 11.0 * h, 1000.0 * h) for h in range(13, 20)],
                   datetime(2026, 11, 19, 11, tzinfo=UTC))  # fmt: skip
    topics = make_topics(stack, unique, [FORECAST_HOURLY])
    produce(stack, next(iter(topics)), FORECAST_HOURLY, [*morning, *noon])
    settings = stack.model_copy(update={"clickhouse_database": ch_settings.clickhouse_database,
                                        "sink_group_id": f"sink-{unique}", "sink_batch_seconds": 0.3})  # fmt: skip
    stats = build_sink(settings, ch, topics).run(list(topics), idle_exit=2.0)
    assert stats.written == 18 and stats.dead_lettered == 0
    replay = stack.model_copy(update={"clickhouse_database": ch_settings.clickhouse_database,
                                      "sink_group_id": f"replay-{unique}", "sink_batch_seconds": 0.3})  # fmt: skip
    build_sink(replay, ch, topics).run(list(topics), idle_exit=2.0)
    ch.command("OPTIMIZE TABLE forecast_hourly FINAL")
    assert ch.query("SELECT count() FROM forecast_hourly").result_rows == [(18,)]
    latest = ch.query(
        "SELECT toHour(hour_start, 'Europe/Berlin') AS h, argMax(visitors, issued_at), argMax(net_revenue, issued_at) "
        "FROM forecast_hourly WHERE store_id = 'wg-fashion' GROUP BY h ORDER BY h"
    ).result_rows
    assert latest[0] == (9, 90.0, 8100) and latest[-1] == (19, 209.0, 19000)
    row = ch.query("SELECT local_date, timezone, currency, method FROM forecast_hourly LIMIT 1").result_rows[0]
    assert row[:3] == (TODAY, "Europe/Berlin", "EUR") and row[3].startswith("weekday-hour")
