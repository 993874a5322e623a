"""`tillflow files watch --once` end to end on a real noida-db broker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.producers.files.test_files import CSV_GOOD, CSV_HEADER, CSV_SPEC, XML_GOOD, XML_SPEC
from tests.producers.pos.broker import Broker, broker, read_tickets
from tillflow.cli import app

__all__ = ["broker"]  # the fixture


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
