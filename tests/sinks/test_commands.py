"""The sinks' commands through the CLI: `clickhouse migrate`, `report`, `sink alerts`, `sink outbox`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from schemas.topics import ALERTS, CONVERSION_HOURLY
from sinks.clickhouse.mapping import COLUMNS, rows_for
from tests.sinks.kafka_helpers import produce
from tests.sinks.vendor_standins import VendorStandIn
from tests.support.records import CATALOGUE, T0, alert, hourly
from tillflow.cli import app
from tillflow.kafka import endpoints
from tillflow.settings import Settings

runner = CliRunner()


def invoke(env: dict[str, str], *args: str) -> Any:
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_migrate_and_report(chdb_dir: Path) -> None:
    db = f"cli_{uuid.uuid4().hex[:8]}"
    env = {
        "TILLFLOW_STATE_DIR": str(chdb_dir),
        "TILLFLOW_CLICKHOUSE_DATABASE": db,
        "TILLFLOW_CATALOGUE": str(CATALOGUE),
    }
    first = invoke(env, "clickhouse", "migrate")
    assert first.exit_code == 0, first.output
    from sinks.clickhouse.migrate import DEFAULT_DIR, discover

    migrations = discover(DEFAULT_DIR)
    applied = "applied " + ", ".join(m.name for m in migrations)  # 0001_tables, 0002_benchmark_views, ...
    assert applied in " ".join(first.output.split()) and "9 stores loaded" in first.output  # rich wraps lines
    again = invoke(env, "clickhouse", "migrate")
    latest = f"schema version {max(m.version for m in migrations)}"
    assert again.exit_code == 0 and "up to date" in again.output and latest in again.output

    from tillflow.clickhouse import connect

    client = connect(Settings(state_dir=chdb_dir, clickhouse_database=db))
    records = [hourly(hour=T0 + timedelta(hours=h), transactions=10 + h, final=h < 2) for h in range(3)]
    rows = [rows_for(CONVERSION_HOURLY, r, {})["conversion_hourly"][0] for r in records]
    client.insert("conversion_hourly", rows, column_names=COLUMNS["conversion_hourly"])

    shown = invoke({**env, "COLUMNS": "160"}, "report", "--store", "wg-fashion", "--date", "2026-11-20")
    assert shown.exit_code == 0, shown.output
    for cell in ("10:00", "11:00", "12:00", "33", "11.0%", "2/3 final", "live"):
        assert cell in shown.output
    missing = invoke(env, "report", "--store", "wg-denim", "--date", "2026-11-20")
    assert missing.exit_code == 1 and "no hourly conversion for store 'wg-denim' on 2026-11-20" in missing.output
    bad = invoke(env, "report", "--store", "wg-fashion", "--date", "20/11/2026")
    assert bad.exit_code == 1 and "is not a date" in bad.output
    client.command(f"DROP DATABASE `{db}`")


@pytest.fixture
def vendors() -> Iterator[VendorStandIn]:
    server = VendorStandIn(webhook_secret="s3cret")
    yield server
    server.close()


def test_sink_alerts_command_delivers_and_outbox_lists(stack: Settings, vendors: VendorStandIn, tmp_path: Path) -> None:
    marker = uuid.uuid4().hex[:8]
    routes = {
        "channels": {"pager": {"type": "pagerduty", "routing_key": "${PD_KEY}", "url": f"{vendors.url}/v2/enqueue"},
                     "ops": {"type": "slack", "url": f"{vendors.url}/slack/T0/B0/x"}},
        "routes": [{"match": {"severity": ["CRITICAL"]}, "channels": ["pager", "ops"]}],
    }  # fmt: skip
    (tmp_path / "routes.yaml").write_text(yaml.safe_dump(routes))
    ep = endpoints(stack)
    env = {
        "TILLFLOW_KAFKA_BOOTSTRAP": ep.bootstrap,
        "TILLFLOW_REGISTRY_URL": ep.registry_url,
        "TILLFLOW_STATE_DIR": str(tmp_path / "state"),
        "TILLFLOW_CATALOGUE": str(CATALOGUE),
        "TILLFLOW_ALERTS_ROUTES": str(tmp_path / "routes.yaml"),
        "TILLFLOW_ALERTS_GROUP_ID": f"cli-alerts-{marker}",
        "PD_KEY": "R0UT1NGKEY0123456789abcdefABCDEF",
    }
    produce(stack, ALERTS, ALERTS, [alert(1, alert_id=f"SALES_DROP:wg-fashion:{marker}")])
    done = invoke(env, "sink", "alerts", "--idle-exit", "2")
    assert done.exit_code == 0, done.output
    mine = [r for r in vendors.of("/v2/enqueue") if r["body"]["dedup_key"].endswith(marker)]
    assert len(mine) == 1 and mine[0]["body"]["event_action"] == "trigger"
    assert any(marker in r["body"]["blocks"][-1]["elements"][0]["text"] for r in vendors.of("/slack/"))
    assert vendors.rejected == []
    listed = invoke(env, "sink", "outbox")
    assert listed.exit_code == 0 and "dead 0" in listed.output

    no_routes = invoke({**env, "TILLFLOW_ALERTS_ROUTES": str(tmp_path / "nope.yaml")}, "sink", "alerts")
    assert no_routes.exit_code == 1 and "nope.yaml: cannot read" in no_routes.output
