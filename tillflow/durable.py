"""Durable local state in SQLite: spools, checkpoints and outboxes that must survive a power cut."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def open_durable(path: Path, **connect: Any) -> sqlite3.Connection:
    """An autocommit SQLite connection in WAL mode with ``synchronous=FULL``: a statement that returned is on
    disk. Creates the parent folder. ``connect`` adds to sqlite3.connect's arguments."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30, **connect)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db
