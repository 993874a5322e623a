"""`tillflow simulate --out`: JSONL files that validate with the models, incidents.json, scenarios, pacing."""

from __future__ import annotations

import json
import socket
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
import yaml
from typer.testing import CliRunner

from producers.simulator import SimulationConfig, injected, simulate
from producers.simulator.output import JsonlSink, Summary, paced, read_incidents, run
from schemas.catalogue import Catalogue
from schemas.models import CameraCount, PosTicket
from schemas.storeops import StaffShift
from tests.producers.conftest import small_catalogue
from tillflow.cli import app

MONDAY = date(2026, 3, 30)
TOPICS = ("pos.tickets", "camera.counts")


def test_simulate_out_writes_valid_jsonl_and_ground_truth(small_catalogue_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    incidents = ["sales-drop:store=kol-food,at=2026-03-30T13", "duplicate:fraction=0.01"]
    args = ["simulate", "--catalogue", str(small_catalogue_file), "--out", str(out), "--seed", "5",
            "--start", "2026-03-30", "--fps", "0.1", "-q", "-i", incidents[0], "-i", incidents[1]]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    tickets = [PosTicket.model_validate(json.loads(line)) for line in (out / "tickets.jsonl").read_text().splitlines()]
    counts = [CameraCount.model_validate(json.loads(line)) for line in (out / "counts.jsonl").read_text().splitlines()]
    config = SimulationConfig(seed=5, start=MONDAY, fps=0.1, incidents=incidents, staffing=True)
    events = list(simulate(small_catalogue(), config))
    assert tickets == [ev.record for ev in events if ev.topic == "pos.tickets"]
    assert counts == [ev.record for ev in events if ev.topic == "camera.counts"]
    shifts = [StaffShift.model_validate(json.loads(line)) for line in (out / "shifts.jsonl").read_text().splitlines()]
    assert shifts == [ev.record for ev in events if ev.topic == "staff.shifts"] and shifts
    first = json.loads((out / "tickets.jsonl").read_text().splitlines()[0])
    assert first == tickets[0].to_json()  # each line is the record's JSON form
    assert read_incidents(out / "incidents.json") == injected(small_catalogue(), config)
    summary = Summary()
    for ev in events:
        summary.add(ev)
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary.to_json()))
    text = " ".join(result.output.split())
    assert (
        f"{len(events)} events to" in text
        and f"duplicates: camera.counts {summary.duplicates['camera.counts']}" in text
    )
    assert f"kol-food │ {summary.stores['kol-food'].visitors} │ {summary.stores['kol-food'].transactions} │" in text


def test_scenario_file_with_options_overriding_it(small_catalogue_file: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "seed": 1,
                "start": "2026-03-30",
                "fps": 0.05,
                "catalogue": str(small_catalogue_file),
                "incidents": [
                    {"kind": "silent-feed", "store": "ber-fashion", "at": "2026-03-30T12:00", "for": "2h"},
                    "dead-camera:camera=c-kol,at=2026-03-30T10",
                ],
            }
        )
    )
    result = CliRunner().invoke(
        app, ["simulate", "--scenario", str(scenario), "--seed", "2", "--out", str(tmp_path / "o"), "-q"]
    )
    assert result.exit_code == 0, result.output
    truth = read_incidents(tmp_path / "o" / "incidents.json")
    assert [(t.kind, t.store_id, t.expected_alert) for t in truth] == [
        ("silent-feed", "ber-fashion", "FEED_SILENT"),
        ("dead-camera", "kol-food", "CAMERA_SILENT"),
    ]
    incidents = ["silent-feed:store=ber-fashion,at=2026-03-30T12,for=2h", "dead-camera:camera=c-kol,at=2026-03-30T10"]
    config = SimulationConfig(seed=2, start=MONDAY, fps=0.05, incidents=incidents)
    expected = [ev.record.model_dump_json() for ev in simulate(small_catalogue(), config) if ev.topic == "pos.tickets"]
    assert (tmp_path / "o" / "tickets.jsonl").read_text().splitlines() == expected  # seed 2 from the option


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "sales-drop:store=nowhere,at=2026-03-30T14"], "no store 'nowhere' in the catalogue"),
        (["-i", "sales-drop:store=kol-food"], "sales-drop needs store= and at="),
        (["--start", "30.03.2026"], "--start '30.03.2026': expected a date YYYY-MM-DD"),
        (["--fps", "100"], "fps must be in (0, 30]"),
    ],
)
def test_bad_options_fail_with_a_reason(
    small_catalogue_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--catalogue", str(small_catalogue_file), "--out", str(tmp_path), *args]
    )
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def test_pacing_compresses_time_relative_to_the_first_event(small: Catalogue) -> None:
    events = list(simulate(small, SimulationConfig(seed=1, start=MONDAY, fps=0.01)))[:400]
    now = [0.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    out = list(paced(events, 1440.0, clock=lambda: now[0], sleep=sleep))
    assert out == events
    span = (events[-1].emit_at - events[0].emit_at).total_seconds()
    assert now[0] == pytest.approx(span / 1440, rel=1e-3)  # a day would take a minute
    assert list(paced(events, None, clock=lambda: 0.0, sleep=lambda s: pytest.fail("slept"))) == events


def test_summary_counts_first_deliveries(small: Catalogue, tmp_path: Path) -> None:
    config = SimulationConfig(seed=1, start=MONDAY, fps=0.1, incidents=["duplicate:fraction=0.2"])
    with JsonlSink(tmp_path) as sink:
        summary = run(simulate(small, config), sink)
    tickets = [json.loads(line) for line in (tmp_path / "tickets.jsonl").read_text().splitlines()]
    unique = {t["ticket_id"]: t for t in tickets}
    assert summary.per_topic["pos.tickets"] == len(tickets)
    assert summary.duplicates["pos.tickets"] == len(tickets) - len(unique) > 0
    sales = [t for t in unique.values() if t["kind"] == "SALE" and t["channel"] == "IN_STORE"]
    assert sum(s.transactions for s in summary.stores.values()) == len(sales)
    counts = [json.loads(line) for line in (tmp_path / "counts.jsonl").read_text().splitlines()]
    entries = {(c["camera_id"], c["frame_seq"]): c["entries"] for c in counts if c["zone_id"] is None}
    assert sum(s.visitors for s in summary.stores.values()) == sum(entries.values())
    assert summary.to_json()["events"] == len(tickets) + len(counts)


def test_sigterm_stops_a_paced_run_cleanly(small_catalogue_file: Path, tmp_path: Path) -> None:
    import re
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "paced"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tillflow", "simulate", "--catalogue", str(small_catalogue_file), "--out", str(out),
         "--start", "2026-03-30", "--fps", "0.2", "--speed", "3600", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (out / "counts.jsonl").exists() or (out / "counts.jsonl").stat().st_size == 0:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    lines = (out / "counts.jsonl").read_text().splitlines()
    assert all(json.loads(line)["camera_id"] for line in lines)  # no half-written line
    sent = re.search(r"(\d+) events to", stdout)
    assert sent is not None
    tickets = (out / "tickets.jsonl").read_text().splitlines()
    shifts = (out / "shifts.jsonl").read_text().splitlines()
    assert int(sent.group(1)) == len(lines) + len(tickets) + len(shifts) > 0


def test_simulate_serves_metrics(small_catalogue_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TILLFLOW_METRICS_PORT", str(port))
    args = ["simulate", "--catalogue", str(small_catalogue_file), "--out", str(tmp_path / "run"), "--seed", "3",
            "--start", "2026-03-30", "--fps", "0.1", "-q", "-i", "duplicate:fraction=0.01"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert sum(summary["duplicates"].values()) > 0
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for topic in TOPICS:
        line = next(x for x in text.splitlines() if x.startswith(f'tillflow_simulator_events_total{{topic="{topic}"}}'))
        assert float(line.split()[-1]) == summary["per_topic"][topic] > 0  # per_topic includes duplicates
    clock = next(x for x in text.splitlines() if x.startswith("tillflow_simulator_event_time_seconds "))
    assert datetime.fromtimestamp(float(clock.split()[-1]), UTC).date() >= MONDAY
