"""deploy/grafana: provisioning files parse and point at real datasources, and every ClickHouse panel's SQL,
expanded with the plugin's macros and the dashboard's variables, runs on the real engine (chDB) over
simulated data and returns rows with the columns the panel plots."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from schemas.catalogue import load_catalogue
from schemas.storeops import OpsHourly
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS, STAFF_SHIFTS, STOREOPS_HOURLY
from sinks.clickhouse.mapping import COLUMNS, rows_for, timezones_of
from streams.batch_ops import recompute_ops
from tests.analytics.grafana_data import add_malls_data
from tests.sinks.grafana_macros import expand_macros, interpolate
from tests.support.records import CATALOGUE, alert, hourly

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DAY = datetime(2026, 11, 20, tzinfo=UTC)
START, END = DAY - timedelta(days=1), DAY + timedelta(days=1)

# The columns each ClickHouse panel plots (dashboard uid, panel id) -> columns, in order.
EXPECTED: dict[tuple[str, int | str], list[str]] = {
    ("tillflow-store-live", 1): ["time", "footfall", "transactions", "net_sales", "conversion_pct"],
    ("tillflow-store-live", 2): ["conversion_pct", "footfall", "transactions", "net_sales"],
    ("tillflow-store-live", 3): ["time", "entries", "exits"],
    ("tillflow-store-live", 4): ["local_hour", "visitors", "transactions", "conversion_pct", "net_sales", "avg_ticket",
                                 "is_final", "revision", "quality"],
    ("tillflow-mall-benchmark", 1): ["store_name", "category", "visitors", "transactions", "conversion_pct",
                                     "revenue_per_m2", "avg_ticket", "conversion_rank", "conversion_percentile"],
    ("tillflow-mall-benchmark", 2): ["time", "store_name", "conversion_pct_mall"],
    ("tillflow-mall-benchmark", 3): ["store_name", "revenue_per_m2", "best_rank_in_category"],
    ("tillflow-mall-benchmark", 4): ["store_name", "zone_name", "visitors", "revenue_per_m2"],
    ("tillflow-alerts", 1): ["time", "kind", "alerts"],
    ("tillflow-alerts", 2): ["time", "store_id", "kind", "state", "severity", "observed", "expected", "message"],
    ("tillflow-alerts", 3): ["open_alerts"],
    ("tillflow-pipeline", 1): ["feed", "last_record", "age_seconds"],
    ("tillflow-pipeline", 2): ["time", "source", "tickets"],
    ("tillflow-pipeline", 8): ["day", "source", "store_id", "pos_sales", "ingested", "missing", "sync_pct",
                               "below_target"],
    ("tillflow-pipeline", 9): ["store_id", "source_kind", "source_id", "on_time_pct", "delayed_minutes",
                               "missing_minutes", "max_delay_s"],
    ("tillflow-pipeline", 10): ["time", "series", "minutes"],
    ("tillflow-pipeline", 11): ["time", "camera", "pos", "all_sources"],
    ("tillflow-store-live", "annotation:Alerts"): ["time", "text", "tags"],
    ("tillflow-store-ops", 1): ["time", "visitors", "staff_on_floor", "visitors_per_staff"],
    ("tillflow-store-ops", 2): ["time", "sales_per_labour_hour", "conversion_pct"],
    ("tillflow-store-ops", 3): ["time", "queue_length"],
    ("tillflow-store-ops", 4): ["time", "queue_mean", "queue_p90", "queue_minutes_over"],
    ("tillflow-store-ops", 5): ["queue_band", "hours", "visitors", "conversion_pct", "short_queue_conversion_pct",
                                "lost_revenue"],
    ("tillflow-store-ops", 6): ["zone", "visitors", "transactions", "conversion_pct", "net_sales", "revenue_per_m2"],
    ("tillflow-store-ops", 7): ["category", "transactions", "conversion_pct", "net_sales"],
    ("tillflow-store-ops", 8): ["local_date", "text", "hours_used", "alerts_cited"],
    ("tillflow-store-live", 20): ["time", "visitors", "forecast_visitors", "net_sales", "forecast_net_sales"],
    ("tillflow-malls", 1): ["month", "tenant_id", "issue", "counted_sales", "breakpoint", "percentage_rent", "rent_due",
                            "silent_days", "late_tickets", "issued_at"],
    ("tillflow-malls", 2): ["tenant_id", "channel", "kind", "tickets", "net_sales"],
    ("tillflow-malls", 3): ["campaign_id", "kind", "starts", "ends", "metric", "lift_pct", "lift_low_pct",
                            "lift_high_pct", "baseline_days", "campaign_days", "verdict", "comparison"],
    ("tillflow-malls", 4): ["time", "series", "treated_vs_controls_pct"],
}  # fmt: skip


def simulate(ch: Any) -> None:
    """A day of the demo estate from tillflow's simulator (tickets and camera frames), the hourly conversion
    computed from those events (store and zone hours, duplicates counted once), and a few alerts."""
    from producers.simulator import SimulationConfig, simulate

    catalogue = load_catalogue(CATALOGUE)
    tz = timezones_of(catalogue)
    zone_of = {c.id: c.zone_id for c in catalogue.cameras}
    rows: dict[str, list[tuple[Any, ...]]] = {}
    hours: dict[tuple[str, str, datetime], dict[str, float]] = {}
    seen: set[Any] = set()

    def add(topic: str, record: Any) -> None:
        for table, table_rows in rows_for(topic, record, tz).items():
            rows.setdefault(table, []).extend(table_rows)

    def bucket(store: str, zone: str | None, at: datetime) -> dict[str, float]:
        local = at.astimezone(ZoneInfo(tz[store])).replace(minute=0, second=0, microsecond=0)
        return hours.setdefault((store, zone or "", local), {"visitors": 0, "transactions": 0, "net_revenue": 0})

    raw: dict[str, list[dict[str, Any]]] = {POS_TICKETS: [], CAMERA_COUNTS: [], STAFF_SHIFTS: []}
    config = SimulationConfig(seed=3, start=DAY.date(), days=1, fps=0.1, staffing=True)
    for event in simulate(catalogue, config):
        record: Any = event.record
        raw[event.topic].append(record.to_json())
        if event.topic == STAFF_SHIFTS:
            add(event.topic, record)
            continue
        identity = getattr(record, "ticket_id", None) or (getattr(record, "camera_id", ""), record.frame_seq)
        if identity in seen:
            continue
        seen.add(identity)
        add(event.topic, record)
        if event.topic == CAMERA_COUNTS:
            bucket(record.store_id, zone_of.get(record.camera_id), record.frame_ts)["visitors"] += record.entries
        elif str(record.kind) == "SALE" and str(record.channel) == "IN_STORE":
            cell = bucket(record.store_id, None, record.occurred_at)
            cell["transactions"] += 1
            cell["net_revenue"] += record.net_amount
    for (store_id, zone, local), cell in hours.items():
        store = catalogue.store(store_id)
        visitors, txns = int(cell["visitors"]), int(cell["transactions"])
        add(CONVERSION_HOURLY, hourly(
            store_id, hour=local.astimezone(UTC), zone_id=zone or None, mall_id=store.mall_id, category=store.category,
            local_hour=local.isoformat(), timezone=store.timezone, currency=store.currency, visitors=visitors,
            transactions=txns, net_revenue=int(cell["net_revenue"]), conversion=txns / visitors if visitors else None,
            complete_share=None if zone else 1.0, pos_complete_share=None if zone else 0.95,
            all_complete_share=None if zone else 0.95,
        ))  # fmt: skip
    for (_store, _grain, _dim, _start), cell in recompute_ops(
        catalogue, raw[POS_TICKETS], raw[CAMERA_COUNTS], raw[STAFF_SHIFTS]
    ).items():
        store = catalogue.store(_store)
        add(STOREOPS_HOURLY, OpsHourly.model_validate({
            **cell, "store_id": _store, "grain": _grain, "dimension": _dim, "hour_start": _start,
            "timezone": store.timezone, "tenant_id": store.tenant_id, "mall_id": store.mall_id, "is_final": True,
            "revision": 0, "updated_at": _start + 3_600_000,
        }))  # fmt: skip
    add(ALERTS, alert(1, hour_start=DAY + timedelta(hours=10), fired_at=DAY + timedelta(hours=11)))
    add(ALERTS, alert(1, state="RESOLVED", hour_start=DAY + timedelta(hours=10), fired_at=DAY + timedelta(hours=12)))
    add(ALERTS, alert(2, store="wg-volt", kind="TRAFFIC_DROP", fired_at=DAY + timedelta(hours=13)))
    for table, table_rows in rows.items():
        ch.insert(table, table_rows, column_names=COLUMNS[table])
    from producers.pos.synccheck import SyncRow, write_rows  # `tillflow sync-check`'s table

    write_rows(ch, [SyncRow("square-wg", "wg-fashion", DAY.date(), 200, 197, 3, 0, 990_000, 975_000, 0.985)], DAY)
    add_malls_data(ch, DAY.date())
    from sinks.briefing.service import build, save

    for store_id in ("wg-fashion", "wg-grocer"):
        briefing, png = build(ch, catalogue, store_id, DAY.date())
        save(ch, briefing, png, [], DAY + timedelta(days=1, hours=5))


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in DASHBOARDS]


def resolve_variables(ch: Any, dashboard: dict[str, Any]) -> dict[str, list[str]]:
    """Run each variable's query in order (later ones may use earlier ones) and pick values like Grafana:
    the first for single-value variables, all for multi-value ones with "All"."""
    values: dict[str, list[str]] = {}
    for var in dashboard["templating"]["list"]:
        sql = interpolate(var["query"], values)
        options = [str(r[0]) for r in ch.query(sql).result_rows]
        assert options, f"variable {var['name']} of {dashboard['uid']} has no values"
        preferred = [o for o in options if o in ("westgate", "wg-fashion")]
        values[var["name"]] = options if var.get("includeAll") and var.get("multi") else (preferred or options)[:1]
    return values


def test_provisioning_files() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "tillflow.yaml").read_text())
    by_uid = {d["uid"]: d for d in ds["datasources"]}
    clickhouse = by_uid["tillflow-clickhouse"]
    assert clickhouse["type"] == "grafana-clickhouse-datasource"
    assert clickhouse["jsonData"]["username"] == "grafana" and clickhouse["jsonData"]["defaultDatabase"] == "tillflow"
    users = (ROOT / "deploy" / "clickhouse-server" / "users.d" / "tillflow.xml").read_text()
    assert "<profile>grafana_readonly</profile>" in users and "<readonly>2</readonly>" in users
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "tillflow.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"
    for dash in dashboards():
        ids = [p["id"] for p in dash["panels"]]
        assert len(ids) == len(set(ids)), dash["uid"]
        for p in dash["panels"]:
            for target in p["targets"]:
                assert target["datasource"]["uid"] in by_uid, (dash["uid"], p["title"])
    assert {d["uid"] for d in dashboards()} == {"tillflow-store-live", "tillflow-mall-benchmark", "tillflow-alerts",
                                                "tillflow-pipeline", "tillflow-malls",
                                                "tillflow-store-ops"}  # fmt: skip
    names = {v["name"] for d in dashboards() for v in d["templating"]["list"]}
    assert {"mall", "store", "category"} <= names


def test_every_clickhouse_panel_returns_its_columns(ch: Any) -> None:
    simulate(ch)
    seen = set()
    for dash in dashboards():
        variables = resolve_variables(ch, dash)
        queries: list[tuple[int | str, str, dict[str, Any]]] = [
            (p["id"], p["title"], t) for p in dash["panels"] for t in p["targets"]
        ]
        queries += [(f"annotation:{a['name']}", a["name"], a["target"]) for a in dash["annotations"]["list"]]
        for ident, title, target in queries:
            if target["datasource"]["type"] != "grafana-clickhouse-datasource":
                continue
            key = (dash["uid"], ident)
            seen.add(key)
            sql = expand_macros(interpolate(target["rawSql"], variables), START, END, interval_s=3600)
            result = ch.query(sql)
            assert list(result.column_names) == EXPECTED[key], f"{key} {title}"
            assert result.result_rows, f"{key} {title} returned no rows:\n{sql}"
            if target["queryType"] == "timeseries":
                assert result.column_names[0] == "time"
                assert isinstance(result.result_rows[0][0], datetime)
    assert seen == set(EXPECTED)


def test_benchmark_panel_ranks_match_the_data(ch: Any) -> None:
    simulate(ch)
    dash = next(d for d in dashboards() if d["uid"] == "tillflow-mall-benchmark")
    sql = next(p for p in dash["panels"] if p["id"] == 1)["targets"][0]["rawSql"]
    variables = {"mall": ["westgate"], "category": ["fashion", "electronics", "grocery", "food"]}
    rows = ch.query(expand_macros(interpolate(sql, variables), START, END)).result_rows
    assert len(rows) == 6
    conversions = [r[4] for r in rows]
    assert conversions == sorted(conversions, reverse=True)
    assert rows[0][7] == 1 and rows[0][8] == 100 and rows[-1][8] == 0
    # The cafe's cameras saw nobody all day (a later revision of each of its hours): no conversion, so no rank
    # and no percentile, listed last; the other five are ranked among themselves.
    cafe = catalogue_store("wg-cafe")
    hours = ch.query(
        "SELECT hour_start, transactions, net_revenue FROM conversion_hourly FINAL "
        "WHERE store_id = 'wg-cafe' AND zone_id = ''"
    ).result_rows
    assert hours
    blind = [
        hourly("wg-cafe", hour=start.replace(tzinfo=UTC), revision=9, mall_id=cafe.mall_id, category=cafe.category,
               local_hour=start.replace(tzinfo=UTC).astimezone(ZoneInfo(cafe.timezone)).isoformat(), visitors=0,
               transactions=txns, net_revenue=net, conversion=None)
        for start, txns, net in hours
    ]  # fmt: skip
    tz = timezones_of(load_catalogue(CATALOGUE))
    ch.insert("conversion_hourly", [rows_for(CONVERSION_HOURLY, h, tz)["conversion_hourly"][0] for h in blind],
              column_names=COLUMNS["conversion_hourly"])  # fmt: skip
    rows = ch.query(expand_macros(interpolate(sql, variables), START, END)).result_rows
    last = rows[-1]
    assert last[0] == cafe.name and last[2] == 0 and (last[4], last[7], last[8]) == (None, None, None)
    assert [r[7] for r in rows[:-1]] == [1, 2, 3, 4, 5] and rows[0][8] == 100 and rows[-2][8] == 0


def catalogue_store(store_id: str) -> Any:
    return load_catalogue(CATALOGUE).store(store_id)


def test_macro_expansion_matches_the_plugin() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    sql = "WHERE $__timeFilter(t) AND d >= $__fromTime AND $__dateFilter(d) GROUP BY $__timeInterval(t)"
    assert expand_macros(sql, start, end, 300) == (
        "WHERE t >= toDateTime(1767225600) AND t <= toDateTime(1767312000) AND d >= toDateTime(1767225600) AND "
        "d >= toDate('2026-01-01') AND d <= toDate('2026-01-02') "
        "GROUP BY toStartOfInterval(toDateTime(t), INTERVAL 300 second)"
    )
    assert (
        interpolate("IN (${c:singlequote}) AND s = '$s'", {"c": ["a", "o'b"], "s": ["x"]})
        == "IN ('a','o\\'b') AND s = 'x'"
    )
    with pytest.raises(ValueError, match="unknown macro"):
        expand_macros("$__nope(x)", start, end)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian package prometheus not installed")
def test_prometheus_panel_queries_parse(tmp_path: Path) -> None:
    exprs = [t["expr"] for d in dashboards() for p in d["panels"] for t in p["targets"] if "expr" in t]
    assert exprs
    rules = {
        "groups": [{"name": "panels", "rules": [{"record": f"panel:{i}", "expr": e} for i, e in enumerate(exprs)]}]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    done = subprocess.run(["promtool", "check", "rules", str(tmp_path / "panels.yml")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_source_minutes_reports_on_time_delayed_and_missing(ch: Any) -> None:
    """The availability view behind the pipeline panel: a camera gap is missing minutes, a long closure is
    not; POS tickets ingested late make their minute delayed, with the delay."""
    from schemas.models import CameraCount, PosTicket

    tz = timezones_of(load_catalogue(CATALOGUE))
    rows: dict[str, list[tuple[Any, ...]]] = {}

    def add(topic: str, record: Any) -> None:
        for table, table_rows in rows_for(topic, record, tz).items():
            rows.setdefault(table, []).extend(table_rows)

    t0 = DAY + timedelta(hours=8)
    minutes = [*range(0, 10), *range(15, 20), *range(300, 305)]  # down for 5 minutes; closed for 4.7 h
    for seq, m in enumerate(minutes):
        at = t0 + timedelta(minutes=m)
        add(CAMERA_COUNTS, CameraCount(camera_id="cam-wg-denim", store_id="wg-denim", frame_ts=at, frame_seq=seq,
                                       people_in_frame=0, entries=0, exits=0, detector="t"))  # fmt: skip
    for i, delay in enumerate((5, 1800)):
        sold = t0 + timedelta(minutes=i)
        add(POS_TICKETS, PosTicket(
            ticket_id=f"late-{i}", source="lille-cdc", store_id="wg-denim", kind="SALE", occurred_at=sold,
            currency="EUR", gross_amount=100, net_amount=100, tax_amount=0, discount_amount=0,
            payments=[{"method": "CARD", "amount": 100}], lines=[], ingested_at=sold + timedelta(seconds=delay),
        ))  # fmt: skip
    insert_arrived(ch, rows)
    got = ch.query(
        "SELECT source_kind, status, count(), max(delay_s) FROM source_minutes "
        "GROUP BY source_kind, status ORDER BY 1, 2"
    ).result_rows
    assert got == [("camera", "missing", 5, 0), ("camera", "on_time", 20, 0), ("pos", "delayed", 1, 1800),
                   ("pos", "on_time", 1, 5)]  # fmt: skip


def test_source_minutes_camera_delay_and_pos_missing_minutes(ch: Any) -> None:
    """Migration 0014: a camera minute that reached ClickHouse late is delayed by the time after the minute;
    POS minutes of a FIRING FEED_SILENT (start of the silence to the next ticket, while the cameras sent
    frames) are missing; a silence that late tickets resolved has none."""
    from schemas.models import CameraCount, PosTicket

    tz = timezones_of(load_catalogue(CATALOGUE))
    rows: dict[str, list[tuple[Any, ...]]] = {}

    def add(topic: str, record: Any) -> None:
        for table, table_rows in rows_for(topic, record, tz).items():
            rows.setdefault(table, []).extend(table_rows)

    t0 = DAY + timedelta(hours=9)
    for seq in range(60):  # the door camera sends every minute of 09:00-10:00
        at = t0 + timedelta(minutes=seq, seconds=5)
        add(CAMERA_COUNTS, CameraCount(camera_id="cam-wg-denim", store_id="wg-denim", frame_ts=at, frame_seq=seq,
                                       people_in_frame=1, entries=1, exits=0, detector="t"))  # fmt: skip
    for i, m in enumerate((1, 45)):  # tickets at 09:01 and 09:45: silent in between
        sold = t0 + timedelta(minutes=m)
        add(POS_TICKETS, PosTicket(
            ticket_id=f"t-{i}", source="denim-cdc", store_id="wg-denim", kind="SALE", occurred_at=sold,
            currency="EUR", gross_amount=100, net_amount=100, tax_amount=0, discount_amount=0,
            payments=[{"method": "CARD", "amount": 100}], lines=[], ingested_at=sold + timedelta(seconds=3),
        ))  # fmt: skip
    # The silence began at 09:02 and fired at 09:21 (20 silent minutes); another one was resolved.
    add(ALERTS, alert(1, kind="FEED_SILENT", store="wg-denim", alert_id="fs-1", fired_at=t0 + timedelta(minutes=21),
                      details={"silent_minutes": "20"}))  # fmt: skip
    for state in ("FIRING", "RESOLVED"):
        add(ALERTS, alert(2, state=state, kind="FEED_SILENT", store="wg-denim", alert_id="fs-2",
                          fired_at=t0 + timedelta(minutes=50), details={"silent_minutes": "20"}))  # fmt: skip
    insert_arrived(ch, rows)
    # A camera minute re-sent by the collector 25 minutes after it ended (10:00 is its first frame).
    late = t0 + timedelta(hours=1)
    ch.insert(
        "camera_frames",
        [("cam-wg-denim", "wg-denim", "", late, "Europe/Berlin", 999, 0, 0, 0, "t", late + timedelta(minutes=26))],
        column_names=[*COLUMNS["camera_frames"], "ingested_at"],
    )
    got = ch.query(
        "SELECT source_kind, status, count(), min(minute), max(minute), max(delay_s) FROM source_minutes "
        "GROUP BY source_kind, status ORDER BY 1, 2"
    ).result_rows
    naive = t0.replace(tzinfo=None)
    assert [(k, s, n, d) for k, s, n, _, _, d in got] == [
        ("camera", "delayed", 1, 25 * 60),
        ("camera", "on_time", 60, 0),
        ("pos", "missing", 43, 0),
        ("pos", "on_time", 2, 3),
    ]
    missing = next(r for r in got if r[1] == "missing")
    assert (missing[3], missing[4]) == (naive + timedelta(minutes=2), naive + timedelta(minutes=44))


def insert_arrived(ch: Any, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    """Insert mapped rows; camera frames arrive in ClickHouse 5 s after their frame time (as a live sink
    writes them; the column's default, the insert time, would make a test's past frames late)."""
    for table, table_rows in rows.items():
        if table == "camera_frames":
            index = COLUMNS[table].index("frame_ts")
            arrived = [(*r, r[index] + timedelta(seconds=5)) for r in table_rows]
            ch.insert(table, arrived, column_names=[*COLUMNS[table], "ingested_at"])
        else:
            ch.insert(table, table_rows, column_names=COLUMNS[table])
