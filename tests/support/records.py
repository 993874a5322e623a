"""Record factories shared by test modules: contract records of the demo estate (tickets, frames, hourly
conversions, alerts) and JSONL lines of tickets, good and bad."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from schemas.models import Alert, CameraCount, HourlyConversion, PosTicket

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


ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "deploy" / "catalogue" / "demo-estate.yaml"
"""The demo estate's catalogue (the records below are of its stores)."""


T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def ticket(n: int, store: str = "wg-fashion", at: datetime = T0, net: int = 5000, **kw: Any) -> PosTicket:
    data: dict[str, Any] = {
        "ticket_id": f"T{n}",
        "source": "sim",
        "store_id": store,
        "kind": "SALE",
        "occurred_at": at,
        "currency": "EUR",
        "gross_amount": net + 950,
        "net_amount": net,
        "tax_amount": 950,
        "discount_amount": 0,
        "payments": [{"method": "CARD", "amount": net + 950}],
        "lines": [
            {"sku": "A", "quantity": 2, "unit_price": net // 4, "net_amount": net // 2, "category": "tops"},
            {"sku": "B", "quantity": 1, "unit_price": net // 2, "net_amount": net // 2},
        ],
        "ingested_at": at + timedelta(seconds=5),
    }
    data.update(kw)
    return PosTicket.model_validate(data)


def frame(seq: int, camera: str = "cam-wg-fashion-main", store: str = "wg-fashion", at: datetime = T0, **kw: Any):  # type: ignore[no-untyped-def]
    data: dict[str, Any] = {
        "camera_id": camera,
        "store_id": store,
        "frame_ts": at + timedelta(seconds=seq),
        "frame_seq": seq,
        "people_in_frame": 3,
        "entries": 1,
        "exits": 0,
        "detector": "sim",
    }
    data.update(kw)
    return CameraCount.model_validate(data)


def hourly(store: str = "wg-fashion", hour: datetime = T0, revision: int = 0, final: bool = True, **kw: Any):  # type: ignore[no-untyped-def]
    data: dict[str, Any] = {
        "store_id": store,
        "mall_id": "westgate",
        "category": "fashion",
        "hour_start": hour,
        "local_hour": hour.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).isoformat(),
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        "visitors": 100,
        "exits": 90,
        "transactions": 20,
        "net_revenue": 100000,
        "refunds": 0,
        "voids": 1,
        "employee_sales": 0,
        "conversion": 0.2,
        "avg_ticket": 5000.0,
        "is_final": final,
        "revision": revision,
        "updated_at": hour + timedelta(hours=1, minutes=10 + revision),
    }
    data.update(kw)
    return HourlyConversion.model_validate(data)


def alert(n: int = 1, state: str = "FIRING", store: str = "wg-fashion", **kw: Any) -> Alert:
    data: dict[str, Any] = {
        "alert_id": f"SALES_DROP:{store}:{n}",
        "kind": "SALES_DROP",
        "state": state,
        "severity": "CRITICAL",
        "store_id": store,
        "mall_id": "westgate",
        "hour_start": T0,
        "observed": 120.0,
        "expected": 900.0,
        "message": "net revenue 120.00 EUR against 900.00 EUR usual for Friday 10:00",
        "fired_at": T0 + timedelta(hours=1, minutes=11),
        "details": {"baseline": "median of 4 Fridays"},
    }
    data.update(kw)
    return Alert.model_validate(data)
