"""`tillflow files watch` end to end on a real noida-db broker, also stopped and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.producers.pos.broker import Broker, broker, own_broker, read_tickets
from tests.support.files import CSV_GOOD, CSV_HEADER, CSV_SPEC, XML_GOOD, XML_SPEC
from tillflow.cli import app

__all__ = ["broker", "own_broker"]  # the fixtures


def test_files_watch_once_publishes_and_moves(broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = broker.settings(tmp_path / "state")
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", broker.bootstrap)
    monkeypatch.setenv("TILLFLOW_REGISTRY_URL", broker.registry.url)
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    csv_spec, xml_spec = tmp_path / "csv.yaml", tmp_path / "xml.yaml"
    csv_spec.write_text(yaml.safe_dump({**CSV_SPEC, "patterns": ["*.csv"]}, allow_unicode=True))
    xml_spec.write_text(yaml.safe_dump({**XML_SPEC, "patterns": ["*.xml"]}))
    (inbox / "a.csv").write_bytes("\n".join([CSV_HEADER, *CSV_GOOD]).encode("cp1252"))
    (inbox / "b.xml").write_text(XML_GOOD, encoding="iso-8859-1")
    (inbox / "c.csv").write_bytes("\n".join([CSV_HEADER, "PAR01;1;14/03/2026"]).encode("cp1252"))
    for p in inbox.iterdir():
        os.utime(p, (time.time() - 60, time.time() - 60))
    runner = CliRunner()
    first = runner.invoke(app, ["files", "watch", str(inbox), "--spec", str(csv_spec), "--once"])
    assert first.exit_code == 1, first.output  # c.csv was rejected
    assert "a.csv: 2 tickets, 2 published, 0 errors -> processed/" in first.output
    assert (inbox / "rejected" / "c.csv.errors.txt").read_text().splitlines()[1].startswith("c.csv: line 2:")
    second = runner.invoke(app, ["files", "watch", str(inbox), "--spec", str(xml_spec), "--once"])
    assert second.exit_code == 0, second.output
    (inbox / "a.csv").write_bytes((inbox / "processed" / "a.csv").read_bytes())  # dropped twice
    os.utime(inbox / "a.csv", (time.time() - 60, time.time() - 60))
    third = runner.invoke(app, ["files", "watch", str(inbox), "--spec", str(csv_spec), "--once"])
    assert "a.csv: 2 tickets, 0 published" in third.output
    ids = sorted(t.ticket_id for t in read_tickets(settings) if t.source in ("caisse-fr", "kasse-de"))
    assert ids == ["caisse-fr:paris-01:1001", "caisse-fr:paris-01:1002", "kasse-de:berlin-01:T-1",
                   "kasse-de:berlin-01:T-2"]  # fmt: skip


def test_files_watch_waits_for_kafka_and_publishes_when_it_returns(own_broker: Broker, tmp_path: Path) -> None:
    settings = own_broker.settings(tmp_path / "state")  # topics exist; then the central site goes away
    own_broker.stop(registry=True)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    spec = tmp_path / "csv.yaml"
    spec.write_text(yaml.safe_dump({**CSV_SPEC, "settle_seconds": 0}, allow_unicode=True))
    (inbox / "a.csv").write_bytes("\n".join([CSV_HEADER, *CSV_GOOD]).encode("cp1252"))
    env = {**os.environ, "TILLFLOW_KAFKA_BOOTSTRAP": own_broker.bootstrap, "COLUMNS": "300",
           "TILLFLOW_REGISTRY_URL": own_broker.registry.url, "TILLFLOW_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    cmd = [sys.executable, "-m", "tillflow", "files", "watch", str(inbox), "--spec", str(spec)]

    # --once: a distinct exit code (2, not 1 for a rejected file), a message, no traceback, the file kept.
    once = subprocess.run([*cmd, "--once"], env=env, capture_output=True, text=True, timeout=120)
    assert once.returncode == 2, once.stdout + once.stderr
    assert "Kafka unreachable; 1 file(s) stay in" in once.stderr and "Traceback" not in once.stderr
    assert (inbox / "a.csv").exists() and not (inbox / "processed").exists()

    # Continuous: keeps watching, backs off, and publishes the file once Kafka is back.
    log = (tmp_path / "watch.log").open("w+")
    proc = subprocess.Popen([*cmd, "--interval", "0.2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while (tmp_path / "watch.log").read_text().count("Kafka unreachable") < 2:
            assert proc.poll() is None, (tmp_path / "watch.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert (inbox / "a.csv").exists()
        own_broker.start()
        deadline = time.monotonic() + 120
        while not (inbox / "processed" / "a.csv").exists():
            assert proc.poll() is None, (tmp_path / "watch.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "watch.log").read_text()
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    text = (tmp_path / "watch.log").read_text()
    assert proc.returncode == 0 and "Traceback" not in text, text
    assert "Kafka reachable again" in text and "a.csv: 2 tickets, 2 published, 0 errors -> processed/" in text
    counts = Counter(t.ticket_id for t in read_tickets(settings))
    assert counts == {"caisse-fr:paris-01:1001": 1, "caisse-fr:paris-01:1002": 1}
