"""The morning briefing: deterministic text from rows with explicit times, the chart, routing and schedule."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sinks.alerts.payloads import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from sinks.alerts.routing import RoutingError, parse_routes
from sinks.briefing.chart import day_chart
from sinks.briefing.compose import DayTotals, compose
from sinks.briefing.service import channels_for, due, payload
from tests.support.events import demo

DAY = date(2026, 11, 20)  # a Friday


def hour(h: int, visitors: int, tx: int, net: int, flags: tuple[str, ...] = ()) -> dict[str, Any]:
    start = datetime(2026, 11, 20, h - 1, tzinfo=UTC)  # Berlin is UTC+1 in November
    return {"hour_start": start, "local_hour": f"2026-11-20T{h:02d}:00:00+01:00", "visitors": visitors,
            "transactions": tx, "net_revenue": net, "quality_flags": list(flags), "is_final": True,
            "revision": 0}  # fmt: skip


def brief(**kw: Any) -> Any:
    hours = [hour(9, 20, 5, 10_000, ("NO_POS_DATA",)), hour(10, 100, 30, 60_000), hour(11, 120, 12, 30_000),
             hour(12, 80, 28, 50_000)]  # fmt: skip
    ops = {
        hours[1]["hour_start"]: {"staff_minutes": 180.0, "staff_on_floor": 3.0, "visitors_per_staff": 33.3,
                                 "queue_minutes": 60, "queue_max": 4.0, "queue_minutes_over": 0},
        hours[2]["hour_start"]: {"staff_minutes": 60.0, "staff_on_floor": 1.0, "visitors_per_staff": 120.0,
                                 "queue_minutes": 60, "queue_max": 9.0, "queue_minutes_over": 12},
    }  # fmt: skip
    alerts = [
        {"alert_id": "a1", "kind": "UNDERSTAFFED", "state": "FIRING", "hour_start": hours[2]["hour_start"]},
        {"alert_id": "a2", "kind": "CAMERA_SILENT", "state": "RESOLVED", "hour_start": hours[3]["hour_start"]},
    ]
    args: dict[str, Any] = dict(
        store_id="wg-grocer", store_name="Frischmarkt", timezone="Europe/Berlin", currency="EUR", day=DAY,
        hours=hours, ops=ops, baseline=[DayTotals(DAY - timedelta(days=7), 300, 90, 160_000)], alerts=alerts,
        queue_people=8, zones=[{"zone": "fresh", "net_revenue": 40_000, "transactions": 20, "visitors": 80}],
    )  # fmt: skip
    args.update(kw)
    return compose(**args)


def test_the_briefing_text_is_deterministic_and_says_what_matters() -> None:
    b = brief()
    assert b.text == brief().text
    lines = b.text.splitlines()
    assert lines[0] == "Frischmarkt: Friday 20 November 2026"
    assert "Sales 1,500.00 EUR (-6% vs usual)" in lines[1] and "visitors 320 (+7% vs usual)" in lines[1]
    assert "conversion 23.4% (-6.6 pts vs usual)" in lines[1]
    assert "Best hour 12:00 (35.0% of 80 visitors); worst hour 11:00 (10.0% of 120)" in b.text
    assert "the stretched hour was 11:00 with 120.0 visitors per staff member" in b.text
    assert "Queues: longest 9 people at 11:00; 12 minutes over 8 people." in b.text
    assert "Zones: fresh 400.00 EUR, 25.0% of its visitors bought." in b.text
    assert "Alerts (2): UNDERSTAFFED 11:00 (firing); CAMERA_SILENT 12:00 (resolved)." in b.text
    assert "Data gaps: no POS data in 1 hour(s) (09:00); 1 camera silent alert(s)." in b.text
    assert b.hour_ids[0] == "wg-grocer|2026-11-20T08:00:00+00:00" and len(b.hour_ids) == 4
    assert b.alert_ids == ["a1", "a2"]
    quiet = brief(baseline=[], alerts=[], ops={}, zones=[])
    assert "(no baseline)" in quiet.text and "Staffing: no shifts reported." in quiet.text
    assert "Alerts: none." in quiet.text
    assert brief(phrase=lambda x: x.text.upper()).text.startswith("FRISCHMARKT")


def test_the_chart_is_a_deterministic_png() -> None:
    b = brief()
    png = day_chart("Frischmarkt", b.hours, b.alerts, "Europe/Berlin")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert png == day_chart("Frischmarkt", b.hours, b.alerts, "Europe/Berlin")
    assert png != day_chart("Frischmarkt", b.hours, [], "Europe/Berlin")  # alerts are drawn


def test_briefings_have_their_own_routes_and_payloads() -> None:
    env = {"SLACK": "https://hooks.slack.invalid/x", "TEAMS": "https://teams.invalid/y", "SECRET": "s3"}
    config = parse_routes(
        {"channels": {"slack": {"type": "slack", "url": "${SLACK}"}, "teams": {"type": "teams", "url": "${TEAMS}"},
                      "audit": {"type": "webhook", "url": "https://audit.invalid", "secret": "${SECRET}"},
                      "pd": {"type": "pagerduty", "routing_key": "k"}},
         "routes": [{"match": {}, "channels": ["pd"]}],
         "briefings": [{"mall": ["westgate"], "channels": ["teams", "audit"]}, {"channels": ["slack", "teams"]}]},
        env=env,
    )  # fmt: skip
    catalogue = demo()
    assert channels_for(config, catalogue.store("wg-grocer")) == ["teams", "audit", "slack"]
    assert channels_for(config, catalogue.store("nyc-soho")) == ["slack", "teams"]
    with pytest.raises(RoutingError, match="PagerDuty"):
        parse_routes({"channels": {"pd": {"type": "pagerduty", "routing_key": "k"}},
                      "briefings": [{"channels": ["pd"]}]}, env={})  # fmt: skip
    b, png = brief(), b"\x89PNG-bytes"
    slack, _ = payload(config.channels["slack"], b, png, 1_700_000_000)
    assert json.loads(slack)["text"] == b.text
    teams = json.loads(payload(config.channels["teams"], b, png, 1_700_000_000)[0])
    image = teams["attachments"][0]["content"]["body"][-1]
    assert image["type"] == "Image" and image["url"] == "data:image/png;base64," + base64.b64encode(png).decode()
    body, headers = payload(config.channels["audit"], b, png, 1_700_000_000)
    assert verify("s3", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    sent = json.loads(body)
    assert sent["hour_ids"] == b.hour_ids and base64.b64decode(sent["chart_png_base64"]) == png


def test_a_briefing_is_due_after_six_local_time_once_per_day() -> None:
    catalogue = demo()
    at = datetime(2026, 11, 20, 5, 30, tzinfo=UTC)  # 06:30 Berlin, 11:00 Kolkata, 00:30 New York
    todo = due(catalogue, at, set())
    assert ("wg-grocer", date(2026, 11, 19)) in todo and ("mum-bandra", date(2026, 11, 19)) in todo
    assert not any(store == "nyc-soho" for store, _ in todo)
    assert ("wg-grocer", date(2026, 11, 19)) not in due(catalogue, at, {("wg-grocer", date(2026, 11, 19))})
    assert ("nyc-soho", date(2026, 11, 19)) in due(catalogue, datetime(2026, 11, 20, 11, 1, tzinfo=UTC), set())


def test_the_forecast_of_the_day_ahead_turns_into_a_staffing_figure() -> None:
    ahead = [
        {"local_hour": "2026-11-21T10:00", "visitors": 60.0, "net_revenue": 30_000},
        {"local_hour": "2026-11-21T11:00", "visitors": 130.4, "net_revenue": 70_000},
        {"local_hour": "2026-11-21T12:00", "visitors": 95.0, "net_revenue": 50_000},
    ]
    b = brief(forecast=ahead, staff_ratio=40.0)
    assert (
        "Today (forecast): about 285 visitors and 1,500.00 EUR in sales; busiest hour 11:00 with about 130 "
        "visitors, which needs 4 staff on the floor at the usual 40.0 visitors per staff member." in b.text
    )  # 130.4 / 40 = 3.26 -> 4: never fewer staff than the ratio asks for
    assert b.figures["staff_needed_at_peak"] == 4 and b.figures["forecast_peak_hour"] == "2026-11-21T11:00"
    without_ratio = brief(forecast=ahead, staff_ratio=None).text
    assert "busiest hour 11:00 with about 130 visitors." in without_ratio and "staff on the floor" not in without_ratio
    assert "Today (forecast)" not in brief().text


def test_a_camera_gap_hour_is_named_among_the_data_gaps() -> None:
    """The stream flags an hour whose entrance cameras sent no frames CAMERA_MISSING (streams/availability.py)."""
    hours = [hour(10, 100, 30, 60_000), hour(11, 0, 12, 30_000, ("CAMERA_MISSING",))]
    b = brief(hours=hours, alerts=[], ops={}, zones=[])
    assert "Data gaps: an entrance camera sent no frames in 1 hour(s) (11:00)." in b.text
