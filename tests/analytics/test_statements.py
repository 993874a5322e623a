"""Tenant revenue statements: exact rent arithmetic, lease validation, and statements over two simulated months
in ClickHouse (chDB) checked against a hand computation from the simulator's tickets, with a re-issue after
late data, the PDF's figures, and underreporting evidence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from analytics.leases import LeaseError, parse_leases
from analytics.statements import changes, natural_breakpoint, percentage_rent
from analytics.warehouse import issue_statements, mall_statements
from schemas.catalogue import load_catalogue
from schemas.models import PosTicket, format_minor
from tests.analytics.estate import load, simulated
from tests.conftest import DEMO_CATALOGUE
from tillflow.cli import app

CATALOGUE = load_catalogue(DEMO_CATALOGUE)
STORES = ["wg-fashion", "wg-denim", "wg-shoes"]
NOV = date(2026, 11, 1)
# bluerivet (wg-denim) stops ringing up 60% of its cash sales in November; wg-shoes' POS feed is silent for
# three hours on the 12th.
INCIDENTS = (
    "underreporting:store=wg-denim,at=2026-11-01T00,share=0.6",
    "silent-feed:store=wg-shoes,at=2026-11-12T11,for=3h",
)
LEASES = {
    "leases": [
        {"tenant_id": "nordwind", "mall_id": "westgate", "currency": "EUR", "base_rent": 1800000, "percentage": "7.5",
         "channels": ["IN_STORE", "ONLINE"]},
        {"tenant_id": "bluerivet", "mall_id": "westgate", "currency": "EUR", "base_rent": 950000, "percentage": 8,
         "refunds_netted": False},
        {"tenant_id": "step", "mall_id": "westgate", "currency": "EUR", "base_rent": 100000, "percentage": "6.25",
         "breakpoint": 2000000, "employee_sales": True},
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def months() -> tuple[list[PosTicket], list[Any]]:
    return simulated(CATALOGUE, STORES, date(2026, 10, 1), 61, incidents=INCIDENTS)


@pytest.fixture
def loaded(ch: Any, months: tuple[list[PosTicket], list[Any]]) -> Iterator[Any]:
    load(ch, CATALOGUE, *months)
    yield ch


def test_rent_arithmetic_is_exact() -> None:
    # 7.5% of 123,456,789.01 above a natural breakpoint of 18,000.00 / 7.5% = 240,000.00.
    assert natural_breakpoint(1_800_000, Decimal("7.5")) == 24_000_000
    assert percentage_rent(12_345_678_901, 24_000_000, Decimal("7.5")) == 924_125_918  # 924,125,917.575 half up
    assert percentage_rent(23_999_999, 24_000_000, Decimal("7.5")) == 0
    assert natural_breakpoint(1_000_000, Decimal("3")) == 33_333_333  # 33,333,333.33 rounds down
    assert percentage_rent(10**17 + 1, 0, Decimal("0.01")) == 10**13  # no float would keep this exact
    assert format_minor(-123456, "EUR") == "-1,234.56" and format_minor(1500, "JPY") == "1,500"
    assert format_minor(1234567, "KWD") == "1,234.567"


def test_lease_errors_name_file_key_and_reason() -> None:
    bad = {
        "leases": [
            {"tenant_id": "nordwind", "mall_id": "westgate", "currency": "EUR", "base_rent": 100, "percentage": "150"},
            {"tenant_id": "volt", "mall_id": "westgate", "currency": "EUR", "base_rent": -1, "percentage": "5",
             "channels": ["POSTAL"]},
            {"tenant_id": "step", "mall_id": "westgate", "currency": "EUR", "base_rent": 1, "percentage": "5",
             "breakpoint": "unnatural"},
        ]
    }  # fmt: skip
    with pytest.raises(LeaseError) as exc:
        parse_leases(bad, CATALOGUE, Path("leases.yaml"))
    text = str(exc.value)
    assert "leases.yaml: leases[0].percentage: " in text and "at most 100" in text
    assert "leases.yaml: leases[1].base_rent: " in text and "leases.yaml: leases[1].channels[0]: " in text
    assert "leases.yaml: leases[2].breakpoint" in text
    wrong = {"leases": [{"tenant_id": "nordwind", "mall_id": "westgate", "currency": "USD", "base_rent": 1,
                         "percentage": 5, "stores": ["wg-denim"]}]}  # fmt: skip
    with pytest.raises(LeaseError) as exc:
        parse_leases(wrong, CATALOGUE, Path("l.yaml"))
    assert "l.yaml: leases[0].stores[0]: store 'wg-denim' belongs to tenant 'bluerivet'" in str(exc.value)
    nobody = {
        "leases": [{"tenant_id": "ghost", "mall_id": "westgate", "currency": "EUR", "base_rent": 1, "percentage": 5}]
    }
    with pytest.raises(
        LeaseError, match=r"l.yaml: leases\[0\].tenant_id: the catalogue has no store of tenant 'ghost'"
    ):
        parse_leases(nobody, CATALOGUE, Path("l.yaml"))


def test_changes_lists_only_what_differs() -> None:
    assert changes({"a": 1, "b": 2}, {"a": 1, "b": 5, "c": 3}) == [
        {"item": "b", "before": 2, "after": 5},
        {"item": "c", "before": 0, "after": 3},
    ]


def _hand(tickets: list[PosTicket], store: str, counts: Any) -> int:
    """Counted November sales of one store, summed straight from the simulator's tickets."""
    tz = CATALOGUE.store(store).tz
    return sum(
        t.net_amount
        for t in tickets
        if t.store_id == store
        and t.occurred_at.astimezone(tz).date().month == 11
        and counts(str(t.channel), str(t.kind))
    )


def test_statements_match_a_hand_computation(loaded: Any, months: Any, tmp_path: Path) -> None:
    from producers.pos.synccheck import SyncRow, write_rows

    tickets = months[0]
    # `tillflow sync-check` ran for wg-shoes on two days: the 12th (silent feed) fell short of the POS's count.
    checked = datetime(2026, 11, 14, tzinfo=UTC)
    write_rows(loaded, [SyncRow("sq-shoes", "wg-shoes", date(2026, 11, 11), 80, 80, 0, 0, 1, 1, 1.0),
                        SyncRow("sq-shoes", "wg-shoes", date(2026, 11, 12), 90, 72, 18, 0, 1, 1, 0.8)],
               checked)  # fmt: skip
    book = parse_leases(LEASES, CATALOGUE)
    statements = {s.tenant_id: s for s in mall_statements(loaded, CATALOGUE, book, "westgate", NOV)}
    assert set(statements) == {"nordwind", "bluerivet", "step"}

    fashion = statements["nordwind"]
    hand = _hand(tickets, "wg-fashion", lambda ch, k: ch in ("IN_STORE", "ONLINE") and k != "EMPLOYEE_SALE")
    assert fashion.counted_sales == hand > 0
    # Hand computation of the rent: 7.5% of the sales above 18,000.00 / 7.5% = 240,000.00, half up.
    over = max(0, hand - 24_000_000)
    assert fashion.breakpoint == 24_000_000
    assert fashion.percentage_rent == int((Decimal(over) * Decimal("0.075")).quantize(Decimal(1), "ROUND_HALF_UP"))
    assert fashion.rent_due == 1_800_000 + fashion.percentage_rent
    employee = [ln for ln in fashion.lines if ln.kind == "EMPLOYEE_SALE"]
    assert employee and not employee[0].counted and employee[0].net_amount > 0

    denim = statements["bluerivet"]  # refunds not deducted
    assert denim.counted_sales == _hand(tickets, "wg-denim", lambda ch, k: ch == "IN_STORE" and k not in
                                        ("REFUND", "EMPLOYEE_SALE"))  # fmt: skip
    refunds = [ln for ln in denim.lines if ln.kind == "REFUND"]
    assert refunds and refunds[0].net_amount < 0 and not refunds[0].counted

    shoes = statements["step"]  # employee sales count, fixed breakpoint
    assert shoes.counted_sales == _hand(tickets, "wg-shoes", lambda ch, k: ch == "IN_STORE")
    assert shoes.breakpoint == 2_000_000
    assert shoes.percentage_rent == int(
        (Decimal(shoes.counted_sales - 2_000_000) * Decimal("0.0625")).quantize(Decimal(1), "ROUND_HALF_UP")
    )

    # Completeness: the catalogue opens Mon-Sat (25 days in November 2026); the silent feed shows on the 12th.
    assert fashion.completeness.open_days == 25 and not fashion.completeness.days_without_data
    assert shoes.completeness.silent_days == [("wg-shoes", date(2026, 11, 12))]
    assert len(shoes.completeness.sync) == 2 and not fashion.completeness.sync
    below = shoes.completeness.days_below_sync_target
    assert [(d["local_date"], d["sync_rate"], d["missing_tickets"]) for d in below] == [(date(2026, 11, 12), 0.8, 18)]
    from analytics.documents import write_pdf

    issued = issue_statements(loaded, [shoes], checked, record=False)
    page = " ".join(PdfReader(write_pdf(issued, tmp_path / "shoes.pdf")).pages[0].extract_text().split())
    assert "Sync rate against the POS (tillflow sync-check): 2 days checked, 1 below 99%: wg-shoes 12 Nov 80.0%" in page
    assert fashion.completeness.silent_days == [] and denim.completeness.silent_days == []
    low = {
        d.local_date: d.pos_coverage
        for d in shoes.completeness.days
        if d.pos_coverage is not None and d.pos_coverage < 1
    }
    assert date(2026, 11, 12) in low and low[date(2026, 11, 12)] <= 0.8

    # Evidence: bluerivet's traffic holds while its conversion and cash share fall against October and its peers.
    ev = {row.metric: row for row in denim.evidence}
    traffic = ev["visitors per 100 m2 per open day"]
    assert 0.85 < traffic.vs_history < 1.15 and 0.8 < traffic.vs_peers < 1.25  # type: ignore[operator]
    assert ev["conversion"].vs_history < 0.95 and ev["conversion"].vs_peers is not None  # type: ignore[operator]
    assert ev["cash share of payments"].vs_history < 0.85  # type: ignore[operator]
    assert ev["cash share of payments"].history_months == 1 and ev["conversion"].peer_stores == 2
    healthy = {row.metric: row for row in fashion.evidence}
    assert 0.9 < healthy["cash share of payments"].vs_history < 1.1  # type: ignore[operator]
    assert 0.8 < healthy["visitors per 100 m2 per open day"].vs_peers < 1.25  # type: ignore[operator]


def test_reissue_after_late_data_shows_what_changed(loaded: Any, months: Any, tmp_path: Path) -> None:
    from analytics.documents import write_csv, write_pdf

    book = parse_leases(LEASES, CATALOGUE)
    first = issue_statements(
        loaded, mall_statements(loaded, CATALOGUE, book, "westgate", NOV), datetime(2026, 12, 1, 8, tzinfo=UTC)
    )
    assert [i.issue for i in first] == [1, 1, 1] and all(i.recorded and not i.changes for i in first)
    again = issue_statements(
        loaded, mall_statements(loaded, CATALOGUE, book, "westgate", NOV), datetime(2026, 12, 1, 9, tzinfo=UTC)
    )
    assert [i.issue for i in again] == [1, 1, 1] and not any(i.recorded for i in again)

    # Two tickets of 29 November reach the POS feed on 3 December; one of them is a refund.
    late_at = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
    template = next(
        t for t in months[0] if t.store_id == "wg-fashion" and t.kind == "SALE" and str(t.channel) == "IN_STORE"
    )
    sale = template.model_copy(update={"ticket_id": "LATE-1", "occurred_at": late_at, "net_amount": 123_45,
                                        "ingested_at": datetime(2026, 12, 3, 10, tzinfo=UTC)})  # fmt: skip
    refund = template.model_copy(update={"ticket_id": "LATE-2", "kind": "REFUND", "occurred_at": late_at,
                                          "net_amount": -20_00, "gross_amount": -20_00,
                                          "ingested_at": sale.ingested_at})  # fmt: skip
    load(loaded, CATALOGUE, [sale, refund], [])
    second = issue_statements(
        loaded, mall_statements(loaded, CATALOGUE, book, "westgate", NOV), datetime(2026, 12, 4, tzinfo=UTC)
    )
    by_tenant = {i.statement.tenant_id: i for i in second}
    fashion = by_tenant["nordwind"]
    assert fashion.issue == 2 and fashion.previous_issue == 1 and fashion.recorded
    diff = {c["item"]: c["after"] - c["before"] for c in fashion.changes}
    assert diff["counted sales"] == 123_45 - 20_00
    assert diff["sales IN_STORE SALE"] == 123_45 and diff["sales IN_STORE REFUND"] == -20_00
    assert diff["tickets after month end"] == 2
    assert fashion.statement.completeness.late_counted_amount == 103_45
    assert by_tenant["bluerivet"].issue == 1 and not by_tenant["bluerivet"].recorded
    stored = loaded.query("SELECT tenant_id, max(issue) FROM tenant_statements GROUP BY tenant_id ORDER BY tenant_id")
    assert stored.result_rows == [("bluerivet", 1), ("nordwind", 2), ("step", 1)]

    # The PDF: one page per tenant with the figures of that tenant's statement, and the change list.
    pdf = write_pdf(second, tmp_path / "s.pdf", mall_name="westgate")
    pages = [page.extract_text() for page in PdfReader(pdf).pages]
    assert len(pages) == 3
    page = next(p for p in pages if "tenant nordwind" in p)
    st = fashion.statement
    for figure in (st.counted_sales, st.percentage_rent, st.rent_due, st.breakpoint):
        assert format_minor(figure, "EUR") in page
    assert "Issue 2 (replaces issue 1)" in page and "Changed since issue 1" in page and "103.45" in page
    assert "Underreporting evidence" in page and "cash share of payments" in page
    shoes_page = next(p for p in pages if "tenant step" in p)
    assert "Days with a silent POS feed: 1 (wg-shoes 2026-11-12)" in shoes_page
    assert "Sync rate against the POS: not checked" in page

    text = write_csv(second, tmp_path / "s.csv").read_text()
    assert (
        f"westgate,2026-11,nordwind,2,rent,counted sales,,,,,{st.counted_sales},{format_minor(st.counted_sales, 'EUR')}"
        in text.replace('"', "")
    )
    assert 'nordwind,2,change,tickets after month end,,,,2,,,EUR,"issue 1: 0, issue 2: 2"' in text
    assert 'nordwind,2,change,counted sales,,,,,10345,103.45,EUR,"issue 1: 374,275.87, issue 2: 374,379.32"' in text


def test_statements_command(loaded: Any, ch_settings: Any, tmp_path: Path) -> None:
    leases = tmp_path / "leases.yaml"
    import yaml

    leases.write_text(yaml.safe_dump(LEASES))
    env = {"TILLFLOW_STATE_DIR": str(ch_settings.state_dir),
           "TILLFLOW_CLICKHOUSE_DATABASE": ch_settings.clickhouse_database,
           "TILLFLOW_CATALOGUE": str(DEMO_CATALOGUE), "TILLFLOW_LEASES": str(leases)}  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(
        app, ["statements", "--mall", "westgate", "--month", "2026-11", "--out", str(tmp_path)], env=env
    )
    assert result.exit_code == 0, result.output
    assert "nordwind: counted sales" in result.output and "(issue 1)" in result.output
    assert (tmp_path / "statements-westgate-2026-11-issue1.pdf").exists()
    assert (tmp_path / "statements-westgate-2026-11-issue1.csv").exists()
    bad = runner.invoke(app, ["statements", "--mall", "westgate", "--month", "2026-13"], env=env)
    assert bad.exit_code != 0 and "not a month like 2026-11" in bad.output
    leases.write_text("leases:\n  - {tenant_id: nordwind}\n")
    broken = runner.invoke(app, ["statements", "--mall", "westgate", "--month", "2026-11"], env=env)
    assert broken.exit_code == 1 and "leases[0].mall_id" in broken.output


def test_demo_leases_are_valid() -> None:
    from analytics.leases import load_leases

    book = load_leases(DEMO_CATALOGUE.parent / "demo-leases.yaml", CATALOGUE)
    assert {lease.tenant_id for lease in book.of_mall("westgate")} == {
        s.tenant_id for s in CATALOGUE.stores if s.mall_id == "westgate"
    }
    assert timedelta(0) == timedelta(0)
