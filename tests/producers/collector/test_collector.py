"""The store collector against a real noida-db broker that is stopped and restarted mid-run.

Run in one process; a crash is emulated by purging the old producer's queue and opening the same
spool and state files with a new collector, which is what a restarted process sees.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from producers.collector import forward
from producers.collector.collect import Collector, CollectorSpec, SqlitePoller, SqliteSource, load_collector_spec
from producers.collector.forward import HEARTBEAT
from producers.collector.metrics import update
from producers.collector.spool import Spool, SpoolSink
from producers.files.parse import parse_file
from producers.files.spec import FileSpec
from producers.pos.checkpoint import CheckpointStore
from producers.tail import CLOCK_MARGIN, bounded_ends, end_offsets, header_values_since
from schemas.topics import POS_TICKETS
from tests.producers.pos.broker import Broker, own_broker, read_tickets
from tests.support.files import CSV_HEADER, CSV_SPEC
from tillflow.sender import RecordSender
from tillflow.settings import Settings

__all__ = ["own_broker"]  # the fixture


def _csv_bytes(first: int, count: int) -> bytes:
    rows = [CSV_HEADER] + [
        f"PAR01;{n};14/03/2026;10:{n % 60:02d};C1;V;;SKU{n % 7};Article {n};1;{n % 50 + 1},00;0;0,10;CB;"
        for n in range(first, first + count)
    ]
    return "\n".join(rows).encode("cp1252")


def csv_file(path: Path, first: int, count: int) -> None:
    path.write_bytes(_csv_bytes(first, count))
    past = time.time() - 60
    os.utime(path, (past, past))


def make(tmp_path: Path, settings: Settings, batch: int = 40) -> Collector:
    spec_path = tmp_path / "caisse.yaml"
    spec_path.write_text(yaml.safe_dump(CSV_SPEC, allow_unicode=True))
    cfg = CollectorSpec(name="paris-01", folder={"path": tmp_path / "inbox", "spec": spec_path}, interval=0.01,
                        batch=batch)  # fmt: skip
    return Collector(cfg, settings)


def run_until(collector: Collector, done: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out; spool depth {collector.spool.depth()}"
        collector.step()


def test_broker_stopped_and_restarted_mid_run_every_ticket_once(
    own_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_broker.settings(tmp_path / "state")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    csv_file(inbox / "morning.csv", 1, 300)

    first = make(tmp_path, settings)
    run_until(first, lambda: first.forwarder.sent >= 120)
    assert first.forwarder.kafka_up

    # The central site goes away (broker and registry); the store keeps selling.
    own_broker.stop(registry=True)
    csv_file(inbox / "noon.csv", 301, 200)
    deadline = time.monotonic() + 30
    while not (inbox / "processed" / "noon.csv").exists() or first.forwarder.kafka_up:
        assert time.monotonic() < deadline
        first.step()
    assert first.spool.depth() >= 200  # taken into the spool while Kafka is down
    update("paris-01", first)
    assert REGISTRY.get_sample_value("tillflow_collector_kafka_up", {"collector": "paris-01"}) == 0
    assert REGISTRY.get_sample_value("tillflow_collector_spool_depth", {"collector": "paris-01"}) >= 200

    # Power cut: whatever the producer still held in memory is gone.
    first.forwarder.sender.producer.purge()
    first.close()

    own_broker.start()
    second = make(tmp_path, settings)
    csv_file(inbox / "evening.csv", 501, 100)
    run_until(second, lambda: second.spool.depth() == 0 and (inbox / "processed" / "evening.csv").exists())
    update("paris-01", second)
    assert REGISTRY.get_sample_value("tillflow_collector_kafka_up", {"collector": "paris-01"}) == 1
    assert REGISTRY.get_sample_value("tillflow_collector_spool_depth", {"collector": "paris-01"}) == 0
    second.close()

    counts = Counter(t.ticket_id for t in read_tickets(settings))
    assert len(counts) == 600
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:5]


@pytest.mark.parametrize("bounded", [True, False], ids=["marker-with-alive", "marker-without-alive"])
def test_crash_with_a_batch_in_flight_is_reconciled(
    own_broker: Broker, tmp_path: Path, bounded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_broker.settings(tmp_path / "state")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    csv_file(inbox / "a.csv", 1, 120)
    before = end_offsets(settings, POS_TICKETS)
    first = make(tmp_path, settings, batch=120)
    run_until(first, lambda: first.forwarder.sent == 120)  # the batch goes out and is acknowledged ...
    assert first.spool.depth() == 0 and first.spool.inflight() is None
    alive = time.time()
    # ... then the busy topic goes on: another store's tickets, stamped an hour after the crash below.
    later = parse_file(_csv_bytes(5001, 500), FileSpec(**{**CSV_SPEC, "name": "other"}), datetime.now(UTC)).tickets
    sender = RecordSender(settings)
    for t in later:
        sender.producer.produce(POS_TICKETS, sender.serde(POS_TICKETS).encode(t), t.store_id.encode(),
                                timestamp=int((alive + 3600) * 1000))  # fmt: skip
    sender.flush()
    # Emulate a crash between Kafka's acknowledgement and the spool update: unmark, restore the marker.
    marker: dict[str, Any] = {"offsets": {str(p): o for p, o in before.items()}, "first": 1, "last": 120}
    if bounded:
        marker["alive"] = alive
    first.spool.db.execute("UPDATE spool SET sent_at = NULL")
    first.spool.set_inflight(marker)
    first.close()
    until_ms = int((alive + HEARTBEAT + CLOCK_MARGIN) * 1000)
    scanned = sum(bounded_ends(settings, POS_TICKETS, until_ms).values()) - sum(before.values())
    assert scanned == 120  # the scan stops at the batch's end, not at the 500 records written after it
    assert sum(end_offsets(settings, POS_TICKETS).values()) - sum(before.values()) == 620
    scans: list[int | None] = []

    def spy(*args: Any, until_ms: int | None = None, **kwargs: Any) -> set[bytes]:
        scans.append(until_ms)
        return header_values_since(*args, until_ms=until_ms, **kwargs)  # type: ignore[misc]

    monkeypatch.setattr(forward, "header_values_since", spy)
    second = make(tmp_path, settings, batch=120)
    run_until(second, lambda: second.spool.depth() == 0)
    assert second.forwarder.sent == 0  # all 120 were found in Kafka: none sent again
    assert scans == [until_ms if bounded else None]
    second.close()
    counts = Counter(t.ticket_id for t in read_tickets(settings) if t.source == "caisse-fr")
    assert len(counts) == 120 and set(counts.values()) == {1}


def test_sqlite_source(own_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = own_broker.settings(tmp_path / "state")
    db_path = tmp_path / "pos.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE lines (ticket TEXT, at TEXT, sku TEXT, qty REAL, price INTEGER, tender TEXT, "
                   "changed INTEGER)")  # fmt: skip
        db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(f"T{i}", "2026-03-14T10:00:00", "SKU1", 1, 250, "CASH", i) for i in range(5)])  # fmt: skip
    mapping = {"name": "local-db", "format": "csv", "amounts": "minor", "currency": "EUR", "store": "lyon-02",
               "timezone": "Europe/Paris", "fields": {"ticket": "ticket", "occurred_at": "at", "sku": "sku",
               "quantity": "qty", "unit_price": "price", "payment_method": "tender"}}  # fmt: skip
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(mapping))
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump({
        "name": "lyon-02", "interval": 0.01,
        "sqlite": {"database": str(db_path), "spec": "mapping.yaml", "watermark": "changed", "start": "0",
                   "query": "SELECT * FROM lines WHERE changed >= :since ORDER BY changed"},
    }))  # fmt: skip
    cfg = load_collector_spec(tmp_path / "collector.yaml")
    c = Collector(cfg, settings)
    run_until(c, lambda: c.forwarder.sent == 5)
    with sqlite3.connect(db_path) as db:
        db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(f"T{i}", "2026-03-14T11:00:00", "SKU2", 2, 100, "CARD", i) for i in range(5, 8)])  # fmt: skip
    run_until(c, lambda: c.forwarder.sent == 8)
    for _ in range(20):
        c.step()
    c.close()
    tickets = read_tickets(settings)
    assert sorted(t.ticket_id for t in tickets) == [f"local-db:lyon-02:T{i}" for i in range(8)]
    assert {t.store_id for t in tickets} == {"lyon-02"}


def test_sqlite_line_added_later_republishes_the_whole_ticket(tmp_path: Path) -> None:
    """A line added to a ticket after it was read re-publishes the ticket with all its lines, not the new one alone
    (downstream, the latest version of a ticket replaces the earlier one)."""
    db_path = tmp_path / "pos.db"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE lines (ticket INTEGER, shop TEXT, at TEXT, sku TEXT, qty REAL, price INTEGER, "
                   "changed INTEGER)")  # fmt: skip
        db.executemany("INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (1, "S1", "2026-03-14T10:00:00", "A", 1, 100, 1), (1, "S1", "2026-03-14T10:00:00", "B", 1, 200, 2),
            (1, "S2", "2026-03-14T10:05:00", "Z", 1, 900, 3),  # same number, other store: another ticket
            (2, "S1", "2026-03-14T10:10:00", "A", 2, 100, 4)])  # fmt: skip
    spec = FileSpec(name="db", format="csv", amounts="minor", currency="EUR",
                    fields={"ticket": "ticket", "store": "shop", "occurred_at": "at", "sku": "sku", "quantity": "qty",
                            "unit_price": "price"})  # fmt: skip
    src = SqliteSource(database=db_path, watermark="changed", spec=tmp_path / "unused.yaml", start="0",
                       query="SELECT * FROM lines WHERE changed > :since ORDER BY changed;")  # fmt: skip
    spool = Spool(tmp_path / "spool.sqlite")
    poller = SqlitePoller(src, spec, SpoolSink(spool), CheckpointStore(tmp_path / "cp.sqlite"), tmp_path / "rej.txt")
    assert poller.poll() == 3
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO lines VALUES (1, 'S1', '2026-03-14T10:00:00', 'C', 1, 300, 5)")
    assert poller.poll() == 1  # only ticket S1/1 changed
    assert poller.poll() == 0
    spooled = [(s.ticket.ticket_id, [ln.sku for ln in s.ticket.lines], s.ticket.net_amount) for s in spool.pending(10)]
    assert spooled == [
        ("db:S1:1", ["A", "B"], 300), ("db:S2:1", ["Z"], 900), ("db:S1:2", ["A"], 200),
        ("db:S1:1", ["A", "B", "C"], 600),
    ]  # fmt: skip
    assert not (tmp_path / "rej.txt").exists()


def test_spool_is_ordered_deduplicated_and_durable(tmp_path: Path) -> None:
    spec = FileSpec(**CSV_SPEC)
    csv_file(tmp_path / "x.csv", 1, 5)
    tickets = parse_file((tmp_path / "x.csv").read_bytes(), spec, datetime.now(UTC)).tickets
    spool = Spool(tmp_path / "spool.sqlite")
    assert spool.add(tickets) == 5
    assert spool.add(tickets[:3]) == 0  # same content: not spooled twice
    spool.mark_sent([spool.pending(1)[0].seq])
    spool.close()
    again = Spool(tmp_path / "spool.sqlite")
    assert [s.ticket.ticket_id for s in again.pending(10)] == [t.ticket_id for t in tickets[1:]]
    assert again.depth() == 4


def test_inflight_marker_alive_is_refreshed_while_a_batch_is_outstanding(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", kafka_bootstrap="127.0.0.1:9", registry_url="http://127.0.0.1:9")
    spool = Spool(tmp_path / "spool.sqlite")
    fwd = forward.Forwarder(settings, spool, "hb-01")
    old = time.time() - HEARTBEAT - 1
    fwd._marker = {"offsets": {"0": 5}, "first": 1, "last": 3, "alive": old}
    spool.set_inflight(dict(fwd._marker))
    fwd._heartbeat()
    refreshed = spool.inflight()
    assert refreshed is not None and refreshed["alive"] > old + HEARTBEAT and refreshed["offsets"] == {"0": 5}
    fwd._heartbeat()  # within HEARTBEAT of the last refresh: no write
    assert spool.inflight() == refreshed
    spool.close()


def test_sent_tickets_are_pruned_after_keep_sent_days(tmp_path: Path) -> None:
    """keep_sent_days: the collector removes old sent rows from the spool at its first step, then hourly."""
    spec = FileSpec(**CSV_SPEC)
    csv_file(tmp_path / "x.csv", 1, 4)
    tickets = parse_file((tmp_path / "x.csv").read_bytes(), spec, datetime.now(UTC)).tickets
    (tmp_path / "inbox").mkdir()
    # No broker: with nothing pending, a step never reaches Kafka.
    settings = Settings(state_dir=tmp_path / "state", kafka_bootstrap="127.0.0.1:9", registry_url="http://127.0.0.1:9")
    now = [1000.0]
    spec_path = tmp_path / "caisse.yaml"
    spec_path.write_text(yaml.safe_dump(CSV_SPEC, allow_unicode=True))
    cfg = CollectorSpec(name="prune-01", folder={"path": tmp_path / "inbox", "spec": spec_path}, keep_sent_days=30)
    collector = Collector(cfg, settings, clock=lambda: now[0])
    spool = collector.spool
    spool.add(tickets)
    day = 86400
    seqs = [s.seq for s in spool.pending(10)]
    ages = {seqs[0]: 40 * day, seqs[1]: 31 * day, seqs[2]: 2 * day}  # seqs[3] not sent yet
    for seq, age in ages.items():
        spool.db.execute("UPDATE spool SET sent_at = ? WHERE seq = ?", (time.time() - age, seq))
    collector.step()
    assert collector.pruned == 2
    left = [row[0] for row in spool.db.execute("SELECT seq FROM spool ORDER BY seq")]
    assert left == seqs[2:] and spool.depth() == 1  # the recent sent row and the unsent one stay
    spool.db.execute("UPDATE spool SET sent_at = ? WHERE seq = ?", (time.time() - 31 * day, seqs[2]))
    now[0] += Collector.PRUNE_EVERY - 1
    collector.step()
    assert collector.pruned == 2  # not yet an hour since the last prune
    now[0] += 1
    collector.step()
    assert collector.pruned == 3 and spool.depth() == 1
    collector.close()


def test_collect_command_until_empty(own_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tillflow.cli import app

    settings = own_broker.settings(tmp_path / "state")
    monkeypatch.setenv("TILLFLOW_KAFKA_BOOTSTRAP", own_broker.bootstrap)
    monkeypatch.setenv("TILLFLOW_REGISTRY_URL", own_broker.registry.url)
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(tmp_path / "state"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    csv_file(inbox / "day.csv", 1, 50)
    (tmp_path / "caisse.yaml").write_text(yaml.safe_dump(CSV_SPEC, allow_unicode=True))
    (tmp_path / "collector.yaml").write_text(
        yaml.safe_dump({"name": "cli-01", "folder": {"path": str(inbox), "spec": "caisse.yaml"}, "interval": 0.1})
    )
    result = CliRunner().invoke(app, ["collect", "--spec", str(tmp_path / "collector.yaml"), "--until-empty"])
    assert result.exit_code == 0, result.output
    assert "cli-01: 50 tickets sent" in result.output
    assert len({t.ticket_id for t in read_tickets(settings)}) == 50
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    result = CliRunner().invoke(app, ["collect", "--spec", str(bad)])
    assert result.exit_code == 1 and "give exactly one of folder or sqlite" in result.output


def test_sigkill_mid_send_then_restart_counts_every_ticket_once(own_broker: Broker, tmp_path: Path) -> None:
    """A real process killed with SIGKILL (what a power cut does to it) while batches are in flight."""
    import signal
    import subprocess
    import sys

    settings = own_broker.settings(tmp_path / "state")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for k in range(4):
        csv_file(inbox / f"part{k}.csv", 1 + k * 1000, 1000)
    (tmp_path / "caisse.yaml").write_text(yaml.safe_dump(CSV_SPEC, allow_unicode=True))
    spec = {"name": "kill-01", "folder": {"path": str(inbox), "spec": "caisse.yaml"}, "batch": 100, "interval": 0.2}
    (tmp_path / "collector.yaml").write_text(yaml.safe_dump(spec))
    env = {
        **os.environ,
        "TILLFLOW_KAFKA_BOOTSTRAP": own_broker.bootstrap,
        "TILLFLOW_REGISTRY_URL": own_broker.registry.url,
        "TILLFLOW_STATE_DIR": str(tmp_path / "state"),
        "TILLFLOW_LOG_LEVEL": "ERROR",
    }
    cmd = [sys.executable, "-m", "tillflow", "collect", "--spec", str(tmp_path / "collector.yaml"), "--until-empty"]
    spool = tmp_path / "state" / "collector" / "kill-01.spool.sqlite"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sent_at_kill = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with sqlite3.connect(f"file:{spool}?mode=ro", uri=True, timeout=5) as db:
                    sent_at_kill = db.execute("SELECT count(*) FROM spool WHERE sent_at IS NOT NULL").fetchone()[0]
            except sqlite3.OperationalError:  # not created yet
                pass
            if sent_at_kill >= 600:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert 0 < sent_at_kill < 4000, "the kill should land mid-run"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    counts = Counter(t.ticket_id for t in read_tickets(settings, timeout=30))
    assert len(counts) == 4000
    assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1][:5]
