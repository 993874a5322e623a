"""A durable outbox of alert deliveries in SQLite under the state directory.

One row per (alert_id, state, channel): a re-emitted alert is recognised and not sent twice. A row is
``pending`` until delivered; failures keep it pending with a later ``next_attempt_at`` (doubling waits), and
after the last attempt it is ``dead`` (kept, listed, and requeued on request). Writes are committed before the
Kafka offset of the alert is, so an acknowledged alert survives a crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from schemas.models import Alert
from tillflow.durable import open_durable

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id         TEXT NOT NULL,
    state            TEXT NOT NULL,
    channel          TEXT NOT NULL,
    alert_json       TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    delivered_at     REAL,
    UNIQUE (alert_id, state, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
"""


@dataclass(frozen=True)
class Delivery:
    id: int
    alert: Alert
    channel: str
    attempts: int


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_durable(path, check_same_thread=False)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def enqueue(self, items: list[tuple[Alert, list[str]]], now: float) -> int:
        """Store deliveries for alerts and their channels in one transaction; returns how many are new."""
        new = 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for alert, channels in items:
                body = json.dumps(alert.to_json())
                for channel in channels:
                    cur = self.db.execute(
                        "INSERT OR IGNORE INTO deliveries (alert_id, state, channel, alert_json, next_attempt_at,"
                        " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (alert.alert_id, str(alert.state), channel, body, now, now),
                    )
                    new += cur.rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return new

    def due(self, now: float, limit: int = 100) -> list[Delivery]:
        """Pending deliveries whose time has come, oldest first; a delivery waits while an earlier one of the
        same alert to the same channel is pending (a resolve never overtakes its trigger)."""
        rows = self.db.execute(
            "SELECT d.id, d.alert_json, d.channel, d.attempts FROM deliveries AS d"
            " WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND NOT EXISTS ("
            "   SELECT 1 FROM deliveries AS e WHERE e.alert_id = d.alert_id AND e.channel = d.channel"
            "   AND e.status = 'pending' AND e.id < d.id)"
            " ORDER BY d.next_attempt_at, d.id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [Delivery(r[0], Alert.model_validate(json.loads(r[1])), r[2], r[3]) for r in rows]

    def delivered(self, delivery_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = NULL"
            " WHERE id = ?",
            (now, delivery_id),
        )

    def failed(self, delivery_id: int, error: str, next_attempt_at: float | None) -> None:
        """Count a failed attempt; ``next_attempt_at`` None parks the delivery as dead."""
        if next_attempt_at is None:
            self.db.execute(
                "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error[:2000], delivery_id),
            )
        else:
            self.db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                (error[:2000], next_attempt_at, delivery_id),
            )

    def defer(self, delivery_id: int, until: float) -> None:
        """Postpone without counting an attempt (rate limit)."""
        self.db.execute("UPDATE deliveries SET next_attempt_at = ? WHERE id = ?", (until, delivery_id))

    def requeue_dead(self, now: float) -> int:
        cur = self.db.execute(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ? WHERE status = 'dead'", (now,)
        )
        return cur.rowcount

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall()
        return {"pending": 0, "delivered": 0, "dead": 0} | {str(s): int(n) for s, n in rows}

    def next_due(self) -> float | None:
        row = self.db.execute("SELECT min(next_attempt_at) FROM deliveries WHERE status = 'pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def rows(self) -> list[dict[str, object]]:
        cur = self.db.execute(
            "SELECT alert_id, state, channel, status, attempts, last_error FROM deliveries ORDER BY id"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
