"""`tillflow poll SOURCE`: pull tickets from a POS cloud API into pos.tickets, once or on a schedule."""

from __future__ import annotations

import logging
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out, progress

log = logging.getLogger(__name__)


def parse_when(text: str) -> datetime:
    """``2026-01-01`` (midnight UTC) or an ISO 8601 time with an offset."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date (2026-01-01) or ISO time (2026-01-01T10:00:00+01:00)"
        ) from None
    if value.tzinfo is None:
        if len(text) > 10:
            raise typer.BadParameter(f"{text!r} has no UTC offset; add one, e.g. +00:00")
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def poll(
    source: Annotated[Path, typer.Argument(help="Source file (YAML or TOML): vendor, stores, auth, options.")],
    since: Annotated[
        str | None, typer.Option(help="Backfill from this date or time (inclusive); the checkpoint is not moved back.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Backfill up to this date or time (exclusive); default now.")
    ] = None,
    every: Annotated[
        str | None, typer.Option(help="Run on a schedule: 15m, 2h, hourly, daily. Without it, sync once and exit.")
    ] = None,
) -> None:
    """Sync tickets from a POS cloud API (Square, Shopify, Lightspeed X-Series, Clover) into pos.tickets.

    Each run reads what changed since the source's checkpoint (less its overlap window), publishes new or
    changed tickets, and advances the checkpoint after Kafka acknowledged them.

    Records that cannot be mapped go to pos.tickets.dlq with the reason. Checkpoint and rotated OAuth tokens
    live under <state_dir>/pos/. Exit code 2 when the vendor API or Kafka kept failing (checkpoint kept).
    SIGTERM stops after the page being handled (or a wait to retry), with the checkpoint saved, exit code 0.
    """
    from producers.pos.checkpoint import CheckpointStore
    from producers.pos.http import AuthFailed, SourceUnavailable, TokenFile
    from producers.pos.lock import AlreadyRunning, exclusive
    from producers.pos.metrics import LAST_SUCCESS, REJECTED, SYNC_ERRORS, TICKETS
    from producers.pos.poller import Poller, SyncResult, make_client
    from producers.pos.schedule import run_every
    from producers.pos.sink import KafkaSink
    from producers.pos.source import SourceError, load_source, parse_duration
    from producers.pos.vendors import adapter_for
    from producers.sender import DeliveryError, RecordSender
    from tillflow.kafka import StackNotRunning
    from tillflow.metrics import serve_metrics
    from tillflow.settings import load_settings

    try:
        cfg = load_source(source)
        interval = parse_duration(every) if every else None
    except (SourceError, ValueError) as exc:
        fail(str(exc))
        return
    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    if interval and (start or end):
        fail("--every cannot be combined with --since/--until (a backfill runs once)")
    settings = load_settings()
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.metrics_host)
    state = settings.state_dir / "pos"
    stopping = False

    def stopped() -> bool:
        return stopping

    store = CheckpointStore(state / f"{cfg.name}.sqlite")
    try:
        adapter = adapter_for(cfg)
        client = make_client(cfg, adapter, TokenFile(state / f"{cfg.name}.tokens.json"), stopped=stopped)
        sender = RecordSender(settings)
    except (SourceError, ValueError, StackNotRunning) as exc:
        fail(str(exc))
        return
    poller = Poller(cfg, KafkaSink(sender, settings), store, client, stopped=stopped)

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = signal.signal(signal.SIGTERM, _stop)

    def run_once() -> SyncResult | None:
        try:
            if start is not None:
                with progress() as bar:
                    task = bar.add_task(f"{cfg.name} backfill", total=1000)

                    def on_progress(scope: str, fraction: float | None, r: SyncResult) -> None:
                        bar.update(task, completed=int((fraction or 0) * 1000),
                                   description=f"{cfg.name} {r.published} published")  # fmt: skip

                    result = poller.sync(since=start, until=end, on_progress=on_progress)
                    bar.update(task, completed=1000)
            else:
                result = poller.sync(until=end)
        except (SourceUnavailable, AuthFailed, DeliveryError) as exc:
            SYNC_ERRORS.labels(cfg.name, type(exc).__name__).inc()
            err.print(f"[red]{cfg.name}: sync stopped, checkpoint kept:[/red] {exc}", highlight=False)
            return None
        except Exception as exc:  # e.g. the schema registry unreachable: same outcome, the checkpoint is kept
            SYNC_ERRORS.labels(cfg.name, type(exc).__name__).inc()
            log.debug("sync failed", exc_info=True)
            err.print(
                f"[red]{cfg.name}: sync stopped, checkpoint kept:[/red] {type(exc).__name__}: {exc}", highlight=False
            )
            return None
        TICKETS.labels(cfg.name).inc(result.published)
        REJECTED.labels(cfg.name).inc(result.rejected)
        LAST_SUCCESS.labels(cfg.name).set(time.time())
        out.print(
            f"{cfg.name}: {result.records} records in {result.pages} pages, {result.published} tickets published, "
            f"{result.unchanged} unchanged, {result.rejected} rejected"
        )
        for reason in result.errors[:5]:
            err.print(f"  rejected: {reason}", highlight=False)
        for warning in getattr(poller.adapter, "warnings", ()):
            err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
        if result.stopped:
            again = " (a backfill: run it again to finish; what was published is not sent twice)" if start else ""
            out.print(f"{cfg.name}: stopped on SIGTERM, checkpoint saved{again}")
        return result

    try:
        with exclusive(state / f"{cfg.name}.lock", f"a poller of source {cfg.name}"):
            if interval is None:
                if run_once() is None:
                    raise typer.Exit(2)
                return
            run_every(interval.total_seconds(), run_once, stopped)
    except AlreadyRunning as exc:
        fail(str(exc))
    finally:
        if previous is not None:  # None: not installed from Python
            signal.signal(signal.SIGTERM, previous)
        store.close()


def register(app: typer.Typer) -> None:
    app.command("poll")(poll)
