"""Store operations on the real local broker and registry: `replay` of three days of a two-store estate.

Tickets with lined categories, entrance, zone and queue cameras, and a rota (each shift at clock-in, open, and
again at clock-out) go through the whole app; the ``storeops.hourly`` records must equal the batch recompute
cell by cell (store, zone and category grains), and UNDERSTAFFED and QUEUE_LONG must fire exactly on the two
injected incidents: op-fashion understaffed at 15:00 on Monday 30 March (Berlin), op-grocer's queue over 6
people 12:10-12:25 on Sunday 29 March (Kolkata), resolved when it clears.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import yaml

from schemas.topics import CAMERA_COUNTS, POS_TICKETS, STAFF_SHIFTS
from streams.batch import compare, recompute
from streams.batch_ops import batch_alerts, compare_ops, recompute_ops
from streams.replay import replay
from tests.streams.ops_estate import ops_catalogue, ops_day
from tillflow.settings import Settings


def test_store_operations_replay_equals_the_batch_and_alerts_on_the_incidents(stack: Settings, tmp_path: Path) -> None:
    catalogue = ops_catalogue()
    events = []
    for i, day in enumerate((date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30))):
        events += ops_day(
            catalogue,
            day,
            seed=i + 1,
            understaffed=("op-fashion", 15) if i == 2 else None,
            queue=("op-grocer", 12, 10, 25) if i == 1 else None,
        )
    events.sort(key=lambda e: e.emit_at.timestamp())
    files = {topic: tmp_path / f"{topic}.jsonl" for topic in (POS_TICKETS, CAMERA_COUNTS, STAFF_SHIFTS)}
    for topic, path in files.items():
        path.write_text("".join(json.dumps(e.record) + "\n" for e in events if e.topic == topic))
    with files[STAFF_SHIFTS].open("a") as fh:
        fh.write('{"shift_id": "bad", "store_id": "op-fashion", "employee_name": "Jane"}\n')  # refused, kept
    catalogue_path = tmp_path / "catalogue.yaml"
    catalogue_path.write_text(yaml.safe_dump(json.loads(catalogue.model_dump_json())))

    result = replay(
        stack,
        catalogue_path,
        catalogue,
        files[POS_TICKETS],
        files[CAMERA_COUNTS],
        tmp_path / "out",
        timeout=400,
        shifts=files[STAFF_SHIFTS],
    )

    assert result.rejected == 1
    assert "employee_name" in (tmp_path / "out" / "rejects.jsonl").read_text()
    tickets = [e.record for e in events if e.topic == POS_TICKETS]
    counts = [e.record for e in events if e.topic == CAMERA_COUNTS]
    shifts = [e.record for e in events if e.topic == STAFF_SHIFTS]
    assert compare(result.conversions, recompute(catalogue, tickets, counts)) == []
    batch = recompute_ops(catalogue, tickets, counts, shifts)
    assert {c[1] for c in batch} == {"STORE", "ZONE", "CATEGORY"}
    assert any(c[1] == "ZONE" and c[2] == "unmapped" for c in batch)
    assert compare_ops(result.ops, batch) == []
    written = (tmp_path / "out" / "storeops.jsonl").read_text().splitlines()
    assert len(written) == len(batch)

    ops_kinds = {"UNDERSTAFFED", "QUEUE_LONG"}
    latest = {
        a["alert_id"]: (a["kind"], a["state"], a["store_id"], int(a["hour_start"].timestamp() * 1000))
        for a in result.alerts
    }
    expected = {
        a["alert_id"]: (a["kind"], a["state"], a["store_id"], a["hour_start"])
        for a in batch_alerts(catalogue, batch, counts)
    }
    assert sorted(v[:3] for v in expected.values()) == [
        ("QUEUE_LONG", "RESOLVED", "op-grocer"),  # latest state: it fired, then cleared
        ("UNDERSTAFFED", "FIRING", "op-fashion"),
    ]
    assert {k: v for k, v in latest.items() if v[0] in ops_kinds} == expected
    # No other alert anywhere: the estate is otherwise ordinary.
    assert {v[0] for v in latest.values()} <= ops_kinds
