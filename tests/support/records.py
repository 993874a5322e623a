"""Record factories shared by test modules: JSONL lines of tickets, good and bad."""

from __future__ import annotations

import json
from pathlib import Path

GOOD_TICKET = {
    "ticket_id": "t-1", "source": "file", "store_id": "wg-volt", "kind": "SALE",
    "occurred_at": "2026-03-30T14:05:00+02:00", "currency": "EUR", "gross_amount": 1000, "net_amount": 1000,
    "tax_amount": 160, "discount_amount": 0, "payments": [{"method": "CARD", "amount": 1000}],
    "lines": [{"sku": "A", "quantity": 1, "unit_price": 1000, "net_amount": 1000}], "ingested_at": 1774872300000,
}  # fmt: skip


def bad_file(tmp_path: Path) -> Path:
    lines = [
        json.dumps(GOOD_TICKET),
        "{not json",
        json.dumps({**GOOD_TICKET, "ticket_id": "t-2", "customer_email": "a@b.c"}),
        "",
        json.dumps({**GOOD_TICKET, "ticket_id": "t-3", "occurred_at": "2026-03-30T14:05:00"}),
        json.dumps({**GOOD_TICKET, "ticket_id": "t-4"}),
        "[1, 2]",
        json.dumps({k: v for k, v in GOOD_TICKET.items() if k != "currency"} | {"ticket_id": "t-5"}),
    ]
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path
