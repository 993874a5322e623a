"""Campaign lift on simulated campaigns with a known injected effect (the simulator's sales-drop incident with
factor 1.3 raises conversion by 30%, a traffic drop of 0.8 removes 20% of visitors) and on a campaign with no
effect; the ClickHouse view campaign_lift gives the same figures as `tillflow lift`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from analytics.campaigns import CampaignError, parse_calendar, units
from analytics.lift import t_quantile, verdict_of
from analytics.warehouse import campaign_lift, load_campaigns
from schemas.catalogue import load_catalogue
from tests.analytics.estate import load, simulated
from tests.conftest import DEMO_CATALOGUE
from tillflow.cli import app

CATALOGUE = load_catalogue(DEMO_CATALOGUE)
STORES = ["wg-fashion", "wg-denim", "wg-shoes"]
# wg-fashion's campaign (22 Oct - 3 Nov) converts 30% more of its visitors and loses 20% of them; nothing happens
# at wg-denim in the same days.
INCIDENTS = (
    "sales-drop:store=wg-fashion,at=2026-10-22T00,for=13d,factor=1.3",
    "traffic-drop:store=wg-fashion,at=2026-10-22T00,for=13d,factor=0.8",
)
TRUTH = {"visitors": math.log(0.8), "conversion": math.log(1.3), "sales": math.log(0.8 * 1.3)}
CALENDAR = {
    "campaigns": [
        {"id": "fashion-promo", "kind": "promotion", "store": "wg-fashion", "start": "2026-10-22", "end": "2026-11-03",
         "baseline_days": 21},
        {"id": "denim-nothing", "kind": "event", "store": "wg-denim", "start": "2026-10-22", "end": "2026-11-03",
         "baseline_days": 21},
        {"id": "womens-layout", "kind": "layout-change", "store": "wg-fashion", "zone": "womens",
         "start": "2026-11-06", "end": "2026-11-09", "baseline_days": 7},
    ]
}  # fmt: skip
TOO_EARLY = {"id": "too-early", "kind": "promotion", "store": "wg-shoes", "start": "2026-10-04", "end": "2026-10-10",
             "baseline_days": 7}  # fmt: skip


@pytest.fixture(scope="module")
def days() -> tuple[list[Any], list[Any]]:
    return simulated(CATALOGUE, STORES, date(2026, 10, 1), 40, seed=5, incidents=INCIDENTS)


@pytest.fixture
def loaded(ch: Any, days: tuple[list[Any], list[Any]]) -> Iterator[Any]:
    _tickets, hours = days
    load(ch, CATALOGUE, [], hours)  # lift reads conversion_hourly only
    yield ch


def test_t_quantile_matches_tables() -> None:
    for df, expected in ((1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (30, 2.0423), (1000, 1.9623)):
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)
    for df, expected in ():
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=2e-3)


def test_verdicts() -> None:
    assert verdict_of(0.05, 0.2).startswith("lift")
    assert verdict_of(-0.3, -0.1).startswith("drop")
    assert verdict_of(-0.05, 0.08).startswith("no detectable effect")
    assert verdict_of(-0.4, 0.5).startswith("cannot tell")


def test_calendar_errors_and_controls() -> None:
    calendar = parse_calendar(CALENDAR, CATALOGUE)
    promo = units(calendar.campaign("fashion-promo"), CATALOGUE, calendar)
    # wg-denim has a campaign of its own in the same days: only wg-shoes is a clean control.
    assert promo.controls == [("wg-shoes", "")] and promo.comparison == "fashion stores in mall westgate"
    alone = units(calendar.campaign("fashion-promo"), CATALOGUE)
    assert {u.store_id for u in alone.controls} == {"wg-denim", "wg-shoes"}
    cat = parse_calendar({"campaigns": [{"id": "c", "kind": "event", "category": "fashion", "mall": "westgate",
                                         "start": "2026-11-01", "end": "2026-11-02"}]}, CATALOGUE)  # fmt: skip
    found = units(cat.campaigns[0], CATALOGUE)
    assert {u.store_id for u in found.treated} == {"wg-fashion", "wg-denim", "wg-shoes"}
    assert {u.store_id for u in found.controls} == {"wg-volt", "wg-grocer", "wg-cafe"}
    bad = {"campaigns": [
        {"id": "a", "kind": "sale", "store": "wg-denim", "start": "2026-11-05", "end": "2026-11-01"},
        {"id": "b", "kind": "event", "store": "nowhere", "start": "2026-11-01", "end": "2026-11-02"},
        {"id": "c", "kind": "event", "store": "wg-denim", "zone": "attic", "start": "2026-11-01", "end": "2026-11-02"},
    ]}  # fmt: skip
    with pytest.raises(CampaignError) as exc:
        parse_calendar(bad, CATALOGUE)
    assert "campaigns[0].kind: " in str(exc.value)
    bad["campaigns"][0]["kind"] = "event"
    with pytest.raises(CampaignError) as exc:
        parse_calendar(bad, CATALOGUE)
    assert "campaigns[0]: end 2026-11-01 is before start 2026-11-05" in str(exc.value)
    bad["campaigns"][0]["end"] = "2026-11-06"
    with pytest.raises(CampaignError) as exc:
        parse_calendar(bad, CATALOGUE)
    assert "campaigns[1].store: no store 'nowhere'" in str(exc.value)
    assert "campaigns[2].zone: store 'wg-denim' has no zone 'attic'" in str(exc.value)


def test_injected_lift_is_recovered_and_no_effect_includes_zero(loaded: Any) -> None:
    calendar = parse_calendar(CALENDAR, CATALOGUE)
    _, promo = campaign_lift(loaded, calendar.campaign("fashion-promo"), CATALOGUE, calendar)
    by_metric = {e.metric: e for e in promo}
    for metric, truth in TRUTH.items():
        e = by_metric[metric]
        assert e.low is not None and e.high is not None and e.low <= truth <= e.high, (metric, e)
        assert e.baseline_days == 18 and e.campaign_days == 11  # Sundays closed
    assert by_metric["visitors"].verdict.startswith("drop") and by_metric["conversion"].verdict.startswith("lift")
    assert by_metric["conversion"].lift == pytest.approx(0.3, abs=0.12)
    assert by_metric["visitors"].per_day is not None and by_metric["visitors"].per_day < 0

    _, nothing = campaign_lift(loaded, calendar.campaign("denim-nothing"), CATALOGUE, calendar)
    for e in nothing:
        assert e.low is not None and e.high is not None and e.low <= 0 <= e.high, e
        assert not e.verdict.startswith(("lift", "drop"))

    # A campaign 3 days after the data starts, on its own calendar (in the one above it would keep wg-shoes out
    # of the other campaigns' controls).
    early_calendar = parse_calendar({"campaigns": [TOO_EARLY]}, CATALOGUE)
    _, early = campaign_lift(loaded, early_calendar.campaigns[0], CATALOGUE, early_calendar)
    assert all(e.verdict.startswith("cannot tell: 3 comparable days before") for e in early)
    _, zone = campaign_lift(loaded, calendar.campaign("womens-layout"), CATALOGUE, calendar)
    assert all(e.verdict.startswith("cannot tell") and e.estimate is None for e in zone)  # no zone rows landed


def test_view_matches_the_command(loaded: Any) -> None:
    calendar = parse_calendar(CALENDAR, CATALOGUE)
    load_campaigns(loaded, calendar, CATALOGUE, datetime(2026, 12, 1, tzinfo=UTC))
    view = loaded.query(
        "SELECT campaign_id, metric, baseline_days, campaign_days, estimate, low, high, verdict FROM campaign_lift"
    ).result_rows
    rows = {(r[0], r[1]): r[2:] for r in view}
    for campaign_id in ("fashion-promo", "denim-nothing"):
        _, estimates = campaign_lift(loaded, calendar.campaign(campaign_id), CATALOGUE, calendar)
        for e in estimates:
            base, during, est, low, high, verdict = rows[(campaign_id, e.metric)]
            assert (base, during) == (e.baseline_days, e.campaign_days)
            assert est == pytest.approx(e.estimate, abs=1e-9)
            assert (low, high) == (pytest.approx(e.low, abs=2e-3), pytest.approx(e.high, abs=2e-3))
            assert verdict.split(" (")[0].split(":")[0] == e.verdict.split(" (")[0].split(":")[0]
    assert rows[("womens-layout", "visitors")][5].startswith("cannot tell")


def test_lift_command(loaded: Any, ch_settings: Any, tmp_path: Any) -> None:
    import yaml

    path = tmp_path / "campaigns.yaml"
    path.write_text(yaml.safe_dump(CALENDAR))
    env = {"TILLFLOW_STATE_DIR": str(ch_settings.state_dir),
           "TILLFLOW_CLICKHOUSE_DATABASE": ch_settings.clickhouse_database,
           "TILLFLOW_CATALOGUE": str(DEMO_CATALOGUE), "TILLFLOW_CAMPAIGNS": str(path), "COLUMNS": "200"}  # fmt: skip
    result = CliRunner().invoke(app, ["lift", "fashion-promo"], env=env)
    assert result.exit_code == 0, result.output
    assert "conversion" in result.output and "lift (95% interval above zero)" in result.output
    assert "compared with fashion stores in mall westgate: wg-shoes" in result.output
    missing = CliRunner().invoke(app, ["lift", "nope"], env=env)
    assert missing.exit_code == 1 and "no campaign 'nope'" in missing.output
