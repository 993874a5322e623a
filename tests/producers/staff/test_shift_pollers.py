"""Shift pollers against the labour stand-in (tests/producers/staff/labor_server.py) and the rota watcher."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers.pos.checkpoint import CheckpointStore
from producers.pos.http import TokenFile
from producers.pos.poller import make_client
from producers.pos.source import Auth, Secret, SourceConfig
from producers.pos.vendors import adapter_for
from producers.staff.mapping import staff_ref
from producers.staff.poller import ShiftPoller, labor_auth
from producers.staff.rota import RotaSpec, RotaWatcher
from schemas.storeops import StaffShift
from tests.producers.staff.labor_server import LaborState, labor_server
from tests.support.events import demo

NOW = datetime(2026, 3, 30, 18, 0, tzinfo=UTC)
MERCHANT = "MJ3ZB0FP6X2P1"


class ListSink:
    def __init__(self) -> None:
        self.sent: list[StaffShift] = []
        self.pending: list[StaffShift] = []
        self.rejects: list[tuple[str, str, Any]] = []

    def send(self, shift: StaffShift) -> None:
        self.pending.append(shift)

    def reject(self, source: str, record_id: str, payload: Any, reason: str) -> None:
        from producers.staff.mapping import scrub_staff

        self.rejects.append((record_id, reason, scrub_staff(payload)))

    def flush(self) -> None:
        self.sent += self.pending
        self.pending = []


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABOR_TEST_TOKEN", "static-token")


def config(vendor: str, base: str, stores: dict[str, str], **kw: Any) -> SourceConfig:
    return SourceConfig(name=f"{vendor}-labor", vendor=vendor, base_url=base, stores=stores,
                        auth=Auth(kind="api_key", token=Secret(env="LABOR_TEST_TOKEN")), page_size=2,
                        backoff_base=0.01, max_attempts=3, **kw)  # fmt: skip


def poller(cfg: SourceConfig, sink: ListSink, tmp: Path, now: datetime) -> ShiftPoller:
    client = make_client(cfg, labor_auth(adapter_for(cfg)), TokenFile(tmp / "tokens.json"), sleep=lambda s: None)
    return ShiftPoller(cfg, sink, CheckpointStore(tmp / "staff.sqlite"), client, now=lambda: now)


def timecard(tid: str, loc: str, member: str, start: str, end: str | None = None, **kw: Any) -> dict[str, Any]:
    card = {"id": tid, "location_id": loc, "team_member_id": member, "start_at": start, "status": "OPEN",
            "wage": {"title": "Sales Associate", "hourly_rate": {"amount": 1500, "currency": "USD"}},
            "breaks": [], "version": 1, "created_at": start, "updated_at": start,
            "team_member": {"given_name": "Jane", "family_name": "Doe"}}  # fmt: skip
    if end:
        card.update(end_at=end, status="CLOSED")
    card.update(kw)
    return card


def test_square_timecards_incrementally_without_names_or_repeats(tmp_path: Path) -> None:
    state = LaborState()
    state.timecards = {
        "TC1": timecard(
            "TC1",
            "L1",
            "TM-a",
            "2026-03-30T13:00:00Z",
            "2026-03-30T17:00:00Z",
            breaks=[
                {
                    "id": "B1",
                    "start_at": "2026-03-30T15:00:00Z",
                    "end_at": "2026-03-30T15:30:00Z",
                    "break_type_id": "REGS",
                    "name": "Lunch",
                    "is_paid": False,
                }
            ],
        ),
        "TC2": timecard("TC2", "L1", "TM-b", "2026-03-30T14:00:00Z"),
        "TC3": timecard("TC3", "L2", "TM-a", "2026-03-30T14:30:00Z", "2026-03-30T16:00:00Z"),
        "TC4": timecard("TC4", "L9", "TM-c", "2026-03-30T15:00:00Z"),  # a location not in the source
        "OLD": timecard("OLD", "L1", "TM-a", "2026-03-27T10:00:00Z", "2026-03-27T12:00:00Z"),
    }
    with labor_server(state) as (base, st):
        cfg = config("square", base, {"L1": "nyc-soho", "L2": "wg-volt", "L9": "nyc-soho"})
        cfg = cfg.model_copy(update={"stores": {"L1": "nyc-soho", "L2": "wg-volt"}})
        st.timecards["TC4"]["location_id"] = "L1"
        st.timecards["TC4"]["team_member_id"] = ""  # no team member: rejected
        sink = ListSink()
        result = poller(cfg, sink, tmp_path, NOW).sync()
        assert sorted(s.shift_id for s in sink.sent) == ["square:TC1", "square:TC2", "square:TC3"]
        assert result.rejected == 1 and "no team_member_id" in sink.rejects[0][1]
        assert "team_member" in sink.rejects[0][2] and "given_name" not in json.dumps(sink.rejects[0][2])
        tc1 = next(s for s in sink.sent if s.shift_id == "square:TC1")
        assert tc1.staff_ref == staff_ref("square-labor", "TM-a") and "Jane" not in tc1.model_dump_json()
        assert tc1.role == "Sales Associate" and tc1.breaks[0].end_at == datetime(2026, 3, 30, 15, 30, tzinfo=UTC)
        assert tc1.store_id == "nyc-soho" and tc1.end_at is not None
        assert next(s for s in sink.sent if s.shift_id == "square:TC2").end_at is None  # open
        assert all(h.get("Square-Version", "") >= "2025-05-21" for _, _, h in st.log)
        # Next sync: TC2 clocked out, a new timecard; only those two are published, the reject is not repeated.
        st.timecards["TC2"].update(end_at="2026-03-30T19:00:00Z", status="CLOSED", version=2)
        st.timecards["TC5"] = timecard("TC5", "L2", "TM-d", "2026-03-30T18:30:00Z")
        sink.sent.clear()
        again = poller(cfg, sink, tmp_path, NOW + timedelta(hours=2)).sync()
        assert sorted(s.shift_id for s in sink.sent) == ["square:TC2", "square:TC5"]
        assert again.unchanged == 2 and len(sink.rejects) == 1
        # A restart with nothing new publishes nothing.
        sink.sent.clear()
        assert poller(cfg, sink, tmp_path, NOW + timedelta(hours=2)).sync().published == 0


def test_square_vendor_fault_keeps_the_checkpoint(tmp_path: Path) -> None:
    from producers.pos.http import SourceUnavailable

    with labor_server() as (base, st):
        st.timecards["T"] = timecard("T", "L1", "m", "2026-03-30T13:00:00Z")
        cfg = config("square", base, {"L1": "nyc-soho"})
        st.faults += [("/v2/labor", 503)] * 5
        with pytest.raises(SourceUnavailable):
            poller(cfg, ListSink(), tmp_path, NOW).sync()
        assert CheckpointStore(tmp_path / "staff.sqlite").position("square-labor") is None
        sink = ListSink()
        poller(cfg, sink, tmp_path, NOW).sync()
        assert [s.shift_id for s in sink.sent] == ["square:T"]


def test_clover_shifts_use_the_override_times_and_page(tmp_path: Path) -> None:
    ms = lambda iso: int(datetime.fromisoformat(iso).timestamp() * 1000)  # noqa: E731
    state = LaborState()
    state.clover[MERCHANT] = {
        f"S{i}": {"id": f"S{i}", "employee": {"id": f"E{i % 2}", "name": "Max Muster", "role": "EMPLOYEE"},
                  "inTime": ms(f"2026-03-30T{8 + i:02d}:00:00+00:00"),
                  "outTime": ms(f"2026-03-30T{12 + i:02d}:00:00+00:00"), "serverBanking": False}
        for i in range(5)
    }  # fmt: skip
    state.clover[MERCHANT]["S1"]["overrideInTime"] = ms("2026-03-30T08:45:00+00:00")
    del state.clover[MERCHANT]["S4"]["outTime"]  # still clocked in
    with labor_server(state) as (base, st):
        cfg = config("clover", base, {MERCHANT: "wg-grocer"})
        sink = ListSink()
        result = poller(cfg, sink, tmp_path, NOW).sync()
        assert result.pages == 3 and result.published == 5
        by_id = {s.shift_id: s for s in sink.sent}
        assert by_id["clover:S1"].start_at == datetime(2026, 3, 30, 8, 45, tzinfo=UTC)
        assert by_id["clover:S4"].end_at is None and by_id["clover:S0"].role == "employee"
        assert "Max" not in json.dumps([s.to_json() for s in sink.sent])
        assert all("expand=employee" in path for _, path, _ in st.log)


def test_rota_csv_through_the_files_watcher(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    text = (
        "store_id,shift_id,employee_id,role,start,end,break_start,break_end,deleted\n"
        "wg-fashion,r1,emp-7,sales,2026-03-30T09:00,2026-03-30T17:00,2026-03-30T12:00,2026-03-30T12:30,\n"
        "wg-fashion,r2,emp-8,cashier,2026-03-30T10:00:00+02:00,,,,\n"
        "nowhere,r3,emp-9,sales,2026-03-30T10:00,,,,\n"
        "wg-fashion,r4,emp-9,sales,yesterday,,,,\n"
    )
    (inbox / "rota.csv").write_text(text)
    sink = ListSink()
    store = CheckpointStore(tmp_path / "rota.sqlite")
    watcher = RotaWatcher(RotaSpec(name="rota", settle_seconds=0), inbox, sink, store, demo())
    [outcome] = watcher.scan()
    assert outcome.published == 2 and [e.line for e in outcome.errors] == [4, 5]
    assert (inbox / "rejected" / "rota.csv.errors.txt").read_text().count("rota.csv:") == 3
    r1 = next(s for s in sink.sent if s.shift_id == "rota:r1")
    assert r1.start_at == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # Berlin local time, CEST
    # The same file again publishes nothing; a clock-out for r2 publishes r2 only.
    old, new = "cashier,2026-03-30T10:00:00+02:00,,", "cashier,2026-03-30T10:00:00+02:00,2026-03-30T18:00:00+02:00,"
    (inbox / "again.csv").write_text(text.replace(old, new))
    sink.sent.clear()
    [again] = watcher.scan()
    assert [s.shift_id for s in sink.sent] == ["rota:r2"] and again.published == 1
