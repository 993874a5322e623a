"""The whole pipeline on the real local broker and registry: `replay` over a simulated estate.

Two days of the demo estate (Sunday 29 March 2026 is Berlin's 23-hour DST day; Kolkata +5:30, Kathmandu
+5:45, New York) with late and duplicated events and two injected incidents: wg-volt's POS feed is silent
12:00-14:00 on Monday, and wg-grocer keeps only a tenth of its sales 15:00-16:00. The final records must
equal the batch recompute cell by cell, and alerts must fire on the incidents and nowhere else.

Whether an event 15-40 minutes late is a correction depends on how far the worker has read the other
input, which a replay of pre-produced topics does not fix; so every other Sunday ticket of one mum-bandra
hour and every other frame of one ktm-thamel hour (half, so no feed looks silent) are withheld and
delivered after everything else was processed, when their hours are surely closed: those hours must come
out as corrections (revision > 0).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from schemas.topics import POS_TICKETS
from streams.batch import compare, recompute
from streams.replay import replay
from tests.streams.estate import Ev, estate_day, write_files
from tests.support.events import DEMO, demo
from tillflow.settings import Settings


def test_replay_on_the_local_broker(stack: Settings, tmp_path: Path) -> None:
    catalogue = demo()
    events = estate_day(catalogue, date(2026, 3, 29), seed=7, dup_rate=0.01, late_rate=0.01)
    events += estate_day(
        catalogue, date(2026, 3, 30), seed=9, silent_feed=("wg-volt", {12, 13}), sales_drop=("wg-grocer", 15, 0.1)
    )
    events.sort(key=lambda e: e.emit_at.timestamp())
    withheld = {("pos.tickets", "mum-bandra", "2026-03-29T12"), ("camera.counts", "ktm-thamel", "2026-03-29T11")}

    def is_late(ev: Ev) -> bool:
        when = ev.record["occurred_at" if ev.topic == POS_TICKETS else "frame_ts"]
        local = datetime.fromisoformat(when).astimezone(catalogue.store(ev.record["store_id"]).tz)
        return (ev.topic, ev.record["store_id"], local.isoformat()[:13]) in withheld

    late = [ev for ev in events if is_late(ev)][::2]
    assert {ev.topic for ev in late} == {POS_TICKETS, "camera.counts"}
    tickets, counts = write_files(tmp_path / "on-time", [ev for ev in events if ev not in late])
    late_tickets, late_counts = write_files(tmp_path / "late", late)
    with tickets.open("a") as t:
        t.write('{"ticket_id": "broken"}\n')
    out = tmp_path / "out"
    result = replay(stack, DEMO, catalogue, tickets, counts, out, timeout=400, late=[(late_tickets, late_counts)])

    assert result.rejected == 1
    assert "ticket_id" not in (out / "rejects.jsonl").read_text() or "line" in (out / "rejects.jsonl").read_text()
    written = [json.loads(line) for line in (out / "conversion.jsonl").read_text().splitlines()]
    assert len(written) == len(result.conversions)
    batch = recompute(
        catalogue,
        [e.record for e in events if e.topic == POS_TICKETS],
        [e.record for e in events if e.topic != POS_TICKETS],
    )
    assert compare(written, batch) == []
    hours = {(r["store_id"], r["local_hour"]) for r in written}
    assert ("mum-bandra", "2026-03-29T10:00:00+05:30") in hours
    assert ("ktm-thamel", "2026-03-30T10:00:00+05:45") in hours
    assert ("wg-grocer", "2026-03-30T09:00:00+02:00") in hours
    corrected = {(r["store_id"], r["local_hour"]) for r in written if r["revision"] > 0}
    assert {("mum-bandra", "2026-03-29T12:00:00+05:30"), ("ktm-thamel", "2026-03-29T11:00:00+05:45")} <= corrected

    berlin = ZoneInfo("Europe/Berlin")
    firing = {
        (a["kind"], a["store_id"], a["hour_start"].astimezone(berlin).hour)
        for a in result.alerts
        if a["state"] == "FIRING"
    }
    incidents = {("wg-volt", 12), ("wg-volt", 13), ("wg-grocer", 15)}
    assert {(store, hour) for _, store, hour in firing} <= incidents  # nowhere else
    assert {hour for kind, store, hour in firing if (kind, store) == ("FEED_SILENT", "wg-volt")} & {12, 13}
    assert ("SALES_DROP", "wg-grocer", 15) in firing
    assert all(a["hour_start"].astimezone(berlin).date() == date(2026, 3, 30) for a in result.alerts)
    alerts_file = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    assert {a["alert_id"] for a in alerts_file} == {a["alert_id"] for a in result.alerts}
