"""Reading JSONL records: valid lines become records, bad lines become rejects with line number and reason."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.models import REDACTED, CameraCount, PosTicket
from tests.support.records import GOOD_TICKET, bad_file
from tillflow.jsonl import Reject, default_rejects_path, read_numbered


def test_bad_lines_become_rejects_with_number_and_reason(tmp_path: Path) -> None:
    numbered = list(read_numbered(bad_file(tmp_path), PosTicket))
    items = [item for _, _, item in numbered]
    good = [i for i in items if isinstance(i, PosTicket)]
    assert [t.ticket_id for t in good] == ["t-1", "t-4"]
    rejects = [i for i in items if isinstance(i, Reject)]
    assert [(r.line, r.reason) for r in rejects] == [
        (2, "not JSON: Expecting property name enclosed in double quotes at column 2"),
        (3, "field 'customer_email' looks like customer personal data; tillflow does not accept it"),
        (5, "occurred_at: timestamp 2026-03-30T14:05:00 has no UTC offset"),
        (7, "expected a JSON object, got list"),
        (8, "currency: Field required"),
    ]
    # The rejects file keeps the refused line, but never the value of a personal-data field.
    refused = json.loads(bad_file(tmp_path).read_text().splitlines()[2])
    kept = json.loads(rejects[1].original)
    assert kept == {**refused, "customer_email": REDACTED} and refused["customer_email"] != REDACTED
    assert rejects[0].original == bad_file(tmp_path).read_text().splitlines()[1]  # not JSON: kept as it was
    assert [n for n, _, _ in numbered] == [1, 2, 3, 5, 6, 7, 8]  # line numbers count the blank line 4


def test_records_are_read_with_the_topic_model(tmp_path: Path) -> None:
    path = tmp_path / "counts.jsonl"
    frame = {"camera_id": "c", "store_id": "s", "frame_ts": 1774872300000, "frame_seq": 1, "people_in_frame": 2,
             "entries": 1, "exits": 0, "detector": "mog2"}  # fmt: skip
    path.write_text(json.dumps(frame) + "\n" + json.dumps(GOOD_TICKET) + "\n")
    (_, _, first), (_, _, second) = read_numbered(path, CameraCount)
    assert isinstance(first, CameraCount) and first.entries == 1
    assert isinstance(second, Reject) and second.line == 2 and "camera_id: Field required" in second.reason


def test_default_rejects_path() -> None:
    assert default_rejects_path(Path("/x/tickets.jsonl")) == Path("/x/tickets.rejects.jsonl")
    assert default_rejects_path(Path("/x/export.txt")) == Path("/x/export.txt.rejects.jsonl")
