"""PostgreSQL helpers for operators: dropping a deleted connector's replication slot."""

from __future__ import annotations

from producers.cdc.source import CdcSource


def drop_replication_slot(source: CdcSource, slot: str) -> bool:
    """Drop ``slot`` if it exists and is inactive; True when it was dropped. Needs psycopg2 (cdc extra)."""
    import psycopg2

    conn = psycopg2.connect(
        host=source.host,
        port=source.db_port,
        dbname=source.database,
        user=source.user,
        password=source.password().get_secret_value(),
        connect_timeout=10,
    )
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            row = cur.fetchone()
            if row is None:
                return False
            if row[0]:
                raise RuntimeError(f"slot {slot} is still in use by a running connector")
            cur.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return True
    finally:
        conn.close()
