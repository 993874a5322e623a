"""`tillflow poll` without the command line: a source's poller wired from the settings, and one counted sync.

The command (producers/pos/commands.py) parses options, holds the lock and the signals and prints; the
poller's wiring (checkpoint store, vendor client with its rotated tokens, Kafka publisher) and what a sync
counts on /metrics live here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from producers.pos.checkpoint import CheckpointStore
from producers.pos.http import TokenFile
from producers.pos.metrics import LAST_SUCCESS, REJECTED, SYNC_ERRORS, TICKETS
from producers.pos.poller import Poller, SyncResult, make_client
from producers.pos.publish import KafkaTicketPublisher
from producers.pos.source import SourceConfig
from producers.pos.vendors import adapter_for
from tillflow.sender import RecordSender
from tillflow.settings import Settings

Progress = Callable[[str, float | None, SyncResult], None]


def build_poller(settings: Settings, cfg: SourceConfig, stopped: Callable[[], bool]) -> Poller:
    """The poller of ``cfg``: checkpoint and OAuth tokens under ``<state_dir>/pos/``, tickets to Kafka."""
    state = settings.state_dir / "pos"
    store = CheckpointStore(state / f"{cfg.name}.sqlite")
    client = make_client(cfg, adapter_for(cfg), TokenFile(state / f"{cfg.name}.tokens.json"), stopped=stopped)
    return Poller(cfg, KafkaTicketPublisher(RecordSender(settings), settings), store, client, stopped=stopped)


def counted_sync(
    poller: Poller, since: datetime | None, until: datetime | None, on_progress: Progress | None = None
) -> SyncResult:
    """One sync (a backfill of [since, until) with ``since``), counted on the poller metrics; a failure is
    counted by its type and raised (the checkpoint keeps what was acknowledged before it)."""
    name = poller.cfg.name
    try:
        if since is not None:
            result = poller.sync(since=since, until=until, on_progress=on_progress)
        else:
            result = poller.sync(until=until)
    except Exception as exc:
        SYNC_ERRORS.labels(name, type(exc).__name__).inc()
        raise
    TICKETS.labels(name).inc(result.published)
    REJECTED.labels(name).inc(result.rejected)
    LAST_SUCCESS.labels(name).set(time.time())
    return result
