"""`--dry-run` of `poll`, `files watch` and `cdc poll`: staging validation before go-live. Each fetches and maps,
prints sample source fields beside the mapped tickets and a fill rate per field, and publishes nothing (no
broker is configured here: a publish would fail)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from producers.preview import Sample, fill_rates, source_fields
from schemas.models import PosTicket
from tests.producers.pos.vendor_server import vendor_server
from tests.support.cdc import make_db, sale
from tests.support.files import CSV_GOOD, CSV_HEADER, CSV_SPEC
from tests.support.pos import add_sale
from tillflow.cli import app

T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("TILLFLOW_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # nothing listens: a publish would fail
    monkeypatch.setenv("POS_TEST_TOKEN", "static-token")


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_fill_rates_and_source_fields() -> None:
    base = {"ticket_id": "a", "source": "s", "store_id": "s1", "kind": "SALE", "occurred_at": T0,
            "currency": "EUR", "gross_amount": 120, "net_amount": 100, "tax_amount": 20, "discount_amount": 0,
            "ingested_at": T0}  # fmt: skip
    line = {"sku": "A", "quantity": 1, "unit_price": 100, "net_amount": 100}
    t1 = PosTicket.model_validate({**base, "terminal_id": "T1", "lines": [line]})
    t2 = PosTicket.model_validate({**base, "ticket_id": "b"})
    rates = fill_rates([t1, t2])
    assert rates["terminal_id"] == 0.5 and rates["net_amount"] == 1.0 and rates["discount_amount"] == 1.0
    assert rates["lines.sku"] == 1.0 and rates["lines.category"] == 0.0 and rates["tickets with lines"] == 0.5
    fields = source_fields({"id": 1, "customer": {"email": "x@y"}, "items": [{"sku": "A"}], "email": "b@c"})
    assert fields == {"id": "1", "items[0].sku": "A"}
    assert Sample({}).tickets == []


def test_poll_dry_run_maps_without_publishing_or_checkpointing(tmp_path: Path) -> None:
    with vendor_server() as (base, st):
        for i in range(4):
            add_sale("square", st, i, T0 + timedelta(minutes=i))
        st.square["SQ000002ORDER"]["total_money"] = {"amount": 1}  # no currency: not mapped
        source = tmp_path / "sq.yaml"
        source.write_text(f"name: sq-dry\nvendor: square\nbase_url: {base}\nstores: {{L8RY5ZZ0T8RZM: s1}}\n"
                          "auth: {kind: api_key, token: {env: POS_TEST_TOKEN}}\n")  # fmt: skip
        output = run("poll", str(source), "--dry-run", "--since", "2026-03-14", "--until", "2026-03-15")
    assert "4 source records, 3 tickets mapped, 1 could not be mapped" in output
    assert "square:SQ000000ORDER" in output and "location_id: L8RY5ZZ0T8RZM" in output
    assert "fill rate per field" in output and "lines.category" in output
    assert "not mapped:" in output and "SQ000002ORDER" in output
    assert not (tmp_path / "state" / "pos" / "sq-dry.sqlite").exists()


def test_files_dry_run_leaves_the_files_where_they_are(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spec = tmp_path / "csv.yaml"
    spec.write_text(yaml.safe_dump({**CSV_SPEC, "patterns": ["*.csv"]}, allow_unicode=True))
    (inbox / "a.csv").write_bytes("\n".join([CSV_HEADER, *CSV_GOOD]).encode("cp1252"))
    os.utime(inbox / "a.csv", (1_700_000_000, 1_700_000_000))  # complete: unchanged for longer than settle_seconds
    output = run("files", "watch", str(inbox), "--spec", str(spec), "--dry-run")
    assert "tickets mapped" in output and "fill rate per field" in output and "line 2" in output
    assert (inbox / "a.csv").exists() and not (inbox / "processed").exists()


def test_cdc_poll_dry_run_maps_the_database_as_the_normalizer_would(tmp_path: Path) -> None:
    conn, _ = make_db(tmp_path)
    sale(conn, 1, "2026-03-14 10:00:00", [("TEA", 1, "3.20"), ("CAKE", 2, "2.95")])
    sale(conn, 2, "2026-03-15 10:00:00", [("TEA", 1, "3.20")])
    source = tmp_path / "source.yaml"
    output = run("cdc", "poll", str(source), "--dry-run", "--since", "2026-03-14", "--until", "2026-03-15")
    assert "2 source records" not in output and "1 tickets mapped" in output
    assert "ticket_id: 1" in output and "closed_at: 2026-03-14 10:00:00" in output
    assert "cashier_name" not in output  # not on the allowlist: never read
    assert "fill rate per field" in output
    assert not (tmp_path / "state" / "cdc").exists()
