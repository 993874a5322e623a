"""Decoded event dicts (as the streams' Avro reader returns them: times in epoch ms) with explicit times, for the
engine, batch and store-operations tests. The contract records themselves (pydantic models) are in records.py."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.catalogue import Catalogue, load_catalogue

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "deploy" / "catalogue" / "demo-estate.yaml"
_ids = itertools.count(1)


def demo() -> Catalogue:
    return load_catalogue(DEMO)


def ms(iso: str) -> int:
    """Epoch ms of an ISO 8601 time with offset."""
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def ticket(
    store: str,
    at: str | int,
    net: int = 1000,
    *,
    kind: str = "SALE",
    ticket_id: str | None = None,
    cash: bool = False,
    units: float = 1.0,
    discount: int = 0,
    channel: str = "IN_STORE",
    currency: str = "EUR",
) -> dict[str, Any]:
    ts = ms(at) if isinstance(at, str) else at
    gross = net + discount
    return {
        "ticket_id": ticket_id or f"t{next(_ids)}",
        "source": "test",
        "store_id": store,
        "tenant_id": None,
        "terminal_id": "1",
        "kind": kind,
        "occurred_at": ts,
        "currency": currency,
        "gross_amount": gross,
        "net_amount": net,
        "tax_amount": 0,
        "discount_amount": discount,
        "payments": [{"method": "CASH" if cash else "CARD", "amount": net}],
        "channel": channel,
        "lines": [
            {
                "sku": "A",
                "description": None,
                "quantity": units,
                "unit_price": net,
                "discount_amount": discount,
                "net_amount": net,
                "category": None,
            }
        ],
        "original_ticket_id": None,
        "ingested_at": ts,
    }


def frame(
    camera: str, store: str, at: str | int, seq: int, entries: int = 0, exits: int = 0, zone: str | None = None
) -> dict[str, Any]:
    ts = ms(at) if isinstance(at, str) else at
    return {
        "camera_id": camera,
        "store_id": store,
        "zone_id": zone,
        "frame_ts": ts,
        "frame_seq": seq,
        "people_in_frame": entries,
        "entries": entries,
        "exits": exits,
        "detector": "test",
    }
