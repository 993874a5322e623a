"""Raw change events of the Paris PostgreSQL source (deploy/connectors/pos-paris-postgres.yaml): Debezium
envelopes with increasing LSNs, and ticket header rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from producers.cdc.source import load_source

SOURCE = load_source(Path(__file__).resolve().parents[2] / "deploy" / "connectors" / "pos-paris-postgres.yaml")


class Db:
    """Builds Debezium envelopes like the Postgres connector, with increasing LSNs."""

    def __init__(self) -> None:
        self.lsn = 1000
        self.ts = 1_795_000_100_000

    def event(
        self, op: str, before: dict[str, Any] | None, after: dict[str, Any] | None, tx: str | None = None
    ) -> dict[str, Any]:
        self.lsn += 8
        self.ts += 10
        value: dict[str, Any] = {
            "before": before,
            "after": after,
            "source": {"version": "3.6.3.Final", "connector": "postgresql", "ts_ms": self.ts, "txId": 1,
                       "lsn": self.lsn, "schema": "public"},
            "op": op,
            "ts_ms": self.ts,
        }  # fmt: skip
        if tx:
            value["transaction"] = {"id": tx, "total_order": 1, "data_collection_order": 1}
        return value


def header(tid: int, status: str = "closed", gross: str = "12.50", net: str = "10.42") -> dict[str, Any]:
    return {"id": tid, "till_no": 3, "status": status, "closed_at": CLOSED_AT, "total_gross": gross,
            "total_net": net, "total_tax": "2.08", "total_discount": "0.00"}  # fmt: skip


CLOSED_AT = 1_795_000_000_000  # wall-clock millis as Debezium writes `timestamp without time zone`
