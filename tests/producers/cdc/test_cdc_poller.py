"""`tillflow cdc poll` on a real SQLite POS database: watermark with overlap, the late commit, triggers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from producers.cdc.normalize import TicketAssembler
from producers.cdc.poller import Poller, lower_watermark, sqlite_trigger_sql
from producers.cdc.source import load_source
from tests.support.cdc import make_db, normalize, sale


def test_watermark_overlap_catches_a_late_commit_with_an_older_timestamp(tmp_path: Path) -> None:
    conn, src = make_db(tmp_path)
    poller = Poller(src, tmp_path / "state" / "poller.sqlite", clock=lambda: 1_795_000_000.0)
    asm = TicketAssembler(src, settle_s=1.0)
    sale(conn, 1, "2026-11-23 10:00:05", [("TEA", 1, "2.50")])
    first = poller.poll()
    poller.commit()
    assert sorted((c.topic.rsplit(".", 1)[1], c.value["op"]) for c in first) == [
        ("lines", "c"), ("payments", "c"), ("tickets", "c")]  # fmt: skip
    assert [t.ticket_id for t in normalize(asm, first, 0.0)] == ["1"]
    # A till that was offline writes a sale closed 3 s *before* the last watermark, after that poll.
    sale(conn, 2, "2026-11-23 10:00:02", [("CAKE", 2, "3.00"), ("TEA", 1, "2.50")])
    second = poller.poll()
    poller.commit()
    assert {c.value["after"]["ticket_id" if "ticket_id" in c.value["after"] else "id"] for c in second} == {2}
    tickets = normalize(asm, second, 20.0)
    assert [(t.ticket_id, t.gross_amount, len(t.lines)) for t in tickets] == [("2", 850, 2)]
    assert "cashier_name" not in str(second)
    # Re-reading the overlap window emits nothing.
    assert poller.poll() == []


def test_without_overlap_the_late_commit_is_lost(tmp_path: Path) -> None:
    """The loss the docs describe: a commit older than the overlap window is never read."""
    conn, src = make_db(tmp_path, overlap=0)
    poller = Poller(src, tmp_path / "state" / "poller.sqlite")
    sale(conn, 1, "2026-11-23 10:00:05", [("TEA", 1, "2.50")])
    poller.poll()
    poller.commit()
    sale(conn, 2, "2026-11-23 10:00:02", [("CAKE", 1, "3.00")])
    assert poller.poll() == []


def test_updates_and_removed_lines_through_the_watermark(tmp_path: Path) -> None:
    conn, src = make_db(tmp_path)
    poller = Poller(src, tmp_path / "state" / "poller.sqlite")
    asm = TicketAssembler(src, settle_s=1.0)
    sale(conn, 1, "2026-11-23 10:00:00", [("TEA", 1, "2.50"), ("CAKE", 1, "3.00")])
    normalize(asm, poller.poll(), 0.0)
    poller.commit()
    conn.execute("BEGIN")
    conn.execute("DELETE FROM lines WHERE sku = 'CAKE'")
    conn.execute("UPDATE tickets SET gross = '2.50', updated_at = '2026-11-23 10:05:00' WHERE id = 1")
    conn.execute("COMMIT")
    changes = poller.poll()
    poller.commit()
    assert sorted(c.value["op"] for c in changes) == ["d", "u"]
    void, corrected = normalize(asm, changes, 30.0)
    assert void.ticket_id == "1~void" and corrected.ticket_id == "1~r2" and corrected.gross_amount == 250
    assert [ln.sku for ln in corrected.lines] == ["TEA"]


def test_state_survives_a_restart_and_is_only_kept_after_commit(tmp_path: Path) -> None:
    conn, src = make_db(tmp_path)
    state = tmp_path / "state" / "poller.sqlite"
    sale(conn, 1, "2026-11-23 10:00:00", [("TEA", 1, "2.50")])
    poller = Poller(src, state)
    assert len(poller.poll()) == 3
    poller.rollback()  # the broker did not acknowledge: send again
    assert len(poller.poll()) == 3
    poller.commit()
    poller.close()
    again = Poller(src, state)
    assert again.poll() == []
    sale(conn, 2, "2026-11-23 10:01:00", [("TEA", 1, "2.50")])
    changes = again.poll()
    assert len(changes) == 3 and min(c.value["source"]["seq"] for c in changes) == 4


def test_trigger_fed_change_table_sees_deletes_and_every_change(tmp_path: Path) -> None:
    conn, src = make_db(tmp_path, method="change_table")
    conn.executescript(sqlite_trigger_sql(src))
    poller = Poller(src, tmp_path / "state" / "poller.sqlite")
    asm = TicketAssembler(src, settle_s=1.0)
    sale(conn, 1, "2026-11-23 10:00:00", [("TEA", 1, "2.50")])
    sale(conn, 2, "2026-11-23 09:00:00", [("CAKE", 1, "3.00")])  # timestamps do not matter here
    assert sorted(t.ticket_id for t in normalize(asm, poller.poll(), 0.0)) == ["1", "2"]
    poller.commit()
    conn.execute("DELETE FROM payments WHERE ticket_id = 2")
    conn.execute("DELETE FROM lines WHERE ticket_id = 2")
    conn.execute("DELETE FROM tickets WHERE id = 2")
    changes = poller.poll()
    poller.commit()
    assert [c.value["op"] for c in changes] == ["d", "d", "d"]
    assert changes[-1].value["before"]["gross"] == "3.00" and "cashier_name" not in changes[-1].value["before"]
    (void,) = normalize(asm, changes, 30.0)
    assert void.ticket_id == "2~void" and void.original_ticket_id == "2" and void.gross_amount == -300


def test_lower_watermark() -> None:
    assert lower_watermark("2026-11-23 10:00:05", 10) == "2026-11-23 09:59:55"
    assert lower_watermark("2026-11-23T10:00:05.250000", 1) == "2026-11-23T10:00:04.250000"
    assert lower_watermark(1_795_000_000, 60) == 1_794_999_940
    assert lower_watermark(1_795_000_000_000, 60) == 1_794_999_940_000
    assert lower_watermark(None, 60) is None


def test_poll_refuses_log_based_engines(tmp_path: Path) -> None:
    from producers.cdc.poller import PollError

    src = load_source(Path(__file__).resolve().parents[3] / "deploy" / "connectors" / "pos-paris-postgres.yaml")
    with pytest.raises(PollError, match="SQLite"):
        Poller(src, tmp_path / "s.sqlite")


def test_poll_and_normalize_commands_through_the_broker(
    stack: Any, tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tillflow cdc poll --once` then `tillflow normalize` on the local broker: tickets land on pos.tickets."""
    from typer.testing import CliRunner

    from tests.producers.cdc.conftest import dead_letters, published_tickets
    from tillflow.cli import app

    conn, _ = make_db(tmp_path)
    src_file = tmp_path / "source.yaml"
    src_file.write_text(src_file.read_text().replace("name: corner-shop", f"name: corner-{unique}"))
    monkeypatch.setenv("TILLFLOW_STATE_DIR", str(stack.state_dir))
    monkeypatch.setenv("TILLFLOW_TOPIC_PARTITIONS", "3")
    monkeypatch.setenv("TILLFLOW_CDC_SETTLE_S", "0.5")
    sale(conn, 1, "2026-11-23 10:00:00", [("TEA", 1, "2.50")])
    sale(conn, 2, "2026-11-23 10:01:00", [("CAKE", 2, "3.00")])
    sale(conn, 3, "2026-11-23 10:02:00", [("TEA", 1, "2.50")])
    conn.execute("UPDATE tickets SET status = 'layaway' WHERE id = 3")  # a status the source file does not map
    runner = CliRunner()
    result = runner.invoke(app, ["cdc", "poll", str(src_file), "--once"])
    assert result.exit_code == 0, result.output
    assert "9 change events published" in result.output
    result = runner.invoke(app, ["normalize", str(src_file), "--idle-exit", "3"])
    assert result.exit_code == 0, result.output
    assert "2 tickets published, 1 dead letters" in result.output
    (dead,) = dead_letters(stack, f"corner-{unique}", f"dlq-{unique}")
    assert dead["ticket_id"] == "3" and "status 'layaway' is neither in status_map" in dead["reason"]
    assert dead["header"]["gross"] == "2.50" and "cashier_name" not in dead["header"]
    # Polling and normalizing again changes nothing.
    assert "0 change events" in runner.invoke(app, ["cdc", "poll", str(src_file), "--once"]).output
    # a folder of sources works too (here the one source file of tmp_path)
    assert "0 tickets published" in runner.invoke(app, ["normalize", str(tmp_path), "--idle-exit", "3"]).output
    tickets = published_tickets(stack, f"corner-{unique}", f"check-{unique}")
    assert sorted((t["ticket_id"], t["gross_amount"], t["store_id"]) for t in tickets) == [
        ("1", 250, "corner-01"),
        ("2", 600, "corner-01"),
    ]
