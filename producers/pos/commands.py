"""`tillflow poll SOURCE`: pull tickets from a POS cloud API into pos.tickets, once or on a schedule."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from tillflow.console import err, fail, out, progress
from tillflow.shutdown import StopDeadline

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
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Fetch and map, print samples beside their tickets and each field's fill rate; publish nothing.",
        ),
    ] = False,
    sample: Annotated[int, typer.Option(help="Records shown side by side with --dry-run.")] = 3,
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
    if dry_run:
        if interval:
            fail("--dry-run runs once: leave out --every")
        _dry_run(cfg, start, end, sample)
        return
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

    deadline = StopDeadline(settings.stop_timeout_s, "the POS poller")

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        deadline.arm()

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
        deadline.cancel()
        if previous is not None:  # None: not installed from Python
            signal.signal(signal.SIGTERM, previous)
        store.close()


def _dry_run(cfg: Any, start: datetime | None, end: datetime | None, sample: int) -> None:
    """Fetch [start, end) (default: the last day) from the vendor, map it, print the preview; no Kafka, no
    checkpoint, no lock (a poller of the same source may run beside it)."""
    from producers.pos.common import MappingError
    from producers.pos.http import AuthFailed, SourceUnavailable, TokenFile
    from producers.pos.poller import FIRST_RUN_LOOKBACK, make_client, map_context
    from producers.pos.vendors import adapter_for
    from producers.preview import Sample, render
    from tillflow.settings import load_settings

    end = end or datetime.now(UTC)
    start = start or end - FIRST_RUN_LOOKBACK
    adapter = adapter_for(cfg)
    client = make_client(cfg, adapter, TokenFile(load_settings().state_dir / "pos" / f"{cfg.name}.tokens.json"))
    samples: list[Sample] = []
    try:
        for scope in adapter.scopes():
            pages = (adapter.pages(client, scope, start, end, backfill=True) if adapter.time_based
                     else adapter.pages(client, scope, start, end, after=0))  # fmt: skip
            for page in pages:
                for record in page.records:
                    try:
                        tickets = adapter.map(record, map_context(cfg, datetime.now(UTC)), scope)
                        samples.append(Sample(record, tickets))
                    except MappingError as exc:
                        samples.append(Sample(record, error=f"{adapter.record_id(record)}: {exc}"))
    except (SourceUnavailable, AuthFailed) as exc:
        fail(f"{cfg.name}: {exc}")
    render(out, f"{cfg.name} ({cfg.vendor}) {start.isoformat()} .. {end.isoformat()}", samples,
           [t for s in samples for t in s.tickets], sample)  # fmt: skip
    for warning in getattr(adapter, "warnings", ()):
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


def _expected_from_vendor(path: Path, days: list[date], zone_of: Callable[[str], str]) -> tuple[str, Any, int]:
    """(source name, tallies, records that could not be mapped) of a POS cloud source, from the vendor API: the
    poller's backfill query (sales made in the window) and mapping."""
    from producers.pos.common import MappingError
    from producers.pos.http import TokenFile
    from producers.pos.poller import make_client, map_context
    from producers.pos.source import load_source
    from producers.pos.synccheck import local_window, tally_tickets
    from producers.pos.vendors import adapter_for
    from tillflow.settings import load_settings

    cfg = load_source(path)
    state = load_settings().state_dir / "pos"
    adapter = adapter_for(cfg)
    client = make_client(cfg, adapter, TokenFile(state / f"{cfg.name}.tokens.json"))
    start, end = local_window(days, {zone_of(s) for s in cfg.stores.values()})
    tickets = []
    unmapped = 0
    now = datetime.now(UTC)
    for scope in adapter.scopes():
        pages = (adapter.pages(client, scope, start, end, backfill=True) if adapter.time_based
                 else adapter.pages(client, scope, start, end, after=0))  # fmt: skip
        for page in pages:
            for record in page.records:
                try:
                    tickets.extend(adapter.map(record, map_context(cfg, now), scope))
                except MappingError:
                    unmapped += 1
    return cfg.name, tally_tickets(tickets, zone_of), unmapped


def _expected_from_database(path: Path, days: list[date], zone_of: Callable[[str], str]) -> tuple[str, Any, int]:
    """(source name, tallies, 0) of a CDC source, from a SELECT on the POS database (PostgreSQL or SQLite)."""
    from producers.cdc.source import Engine, load_source
    from producers.pos.synccheck import database_query, local_window, tally_database_rows

    src = load_source(path)
    zones = {src.timezone} | ({zone_of(src.store_id)} if src.store_id else set())
    start, end = local_window(days, zones)
    zone = ZoneInfo(src.timezone)
    lo, hi = (t.astimezone(zone).replace(tzinfo=None) for t in (start, end))  # wall clock, as the POS writes it
    query = database_query(src)
    if src.engine == Engine.POSTGRES:
        import psycopg2

        conn = psycopg2.connect(host=src.host, port=src.db_port, dbname=src.database, user=src.user,
                                password=src.password().get_secret_value())  # fmt: skip
    elif src.engine == Engine.SQLITE:
        import sqlite3

        conn = sqlite3.connect(f"file:{src.path}?mode=ro", uri=True)
        query = query.replace("%s", "?")
    else:
        raise ValueError(f"source {src.name}: sync-check reads PostgreSQL and SQLite POS databases")
    try:
        cur = conn.cursor()
        cur.execute(query, (lo, hi))
        rows = cur.fetchall()
    finally:
        conn.close()
    return src.name, tally_database_rows(src, rows, zone_of), 0


def sync_check(
    sources: Annotated[
        list[Path], typer.Argument(help="POS source files: cloud API sources (vendor:) or CDC sources.")
    ],
    day: Annotated[str | None, typer.Option("--date", help="Local day to check (default: yesterday).")] = None,
    days: Annotated[int, typer.Option(help="Check this many days up to --date.", min=1, max=92)] = 1,
    every: Annotated[str | None, typer.Option(help="Check again on a schedule (e.g. hourly), serving metrics.")] = None,
) -> None:
    """Sync rate per source, store and local day: the sales the POS says it had against those tillflow ingested.

    The POS side comes from the vendor API (the poller's backfill query: sales made that day) or, for a CDC
    source, from a SELECT on the POS database; tillflow's from ClickHouse's tickets table. Rows go to the
    pos_sync_daily table and the tillflow_pos_sync_rate gauge (alert PosSyncRateBelowTarget). Exit code 1 when
    a day is under 99 %, naming some of the missing tickets.
    """
    import yaml

    from producers.pos.metrics import SYNC_CHECKED, SYNC_MISSING, SYNC_RATE
    from producers.pos.schedule import run_every
    from producers.pos.source import parse_duration
    from producers.pos.synccheck import TARGET, compare, ingested_tallies, write_rows, zone_lookup
    from schemas.catalogue import load_catalogue
    from sinks.clickhouse.connection import connect
    from tillflow.metrics import serve_metrics
    from tillflow.settings import load_settings

    settings = load_settings()
    last = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
    checked = [last - timedelta(days=n) for n in range(days)][::-1]
    timezones: dict[str, str] = {}
    if settings.catalogue and settings.catalogue.exists():
        timezones = {s.id: s.timezone for s in load_catalogue(settings.catalogue).stores}
    zone_of = zone_lookup(timezones, "UTC")
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.metrics_host)

    def run_once() -> bool:
        client = connect(settings)
        below = []
        try:
            for path in sources:
                try:
                    raw = yaml.safe_load(path.read_text()) if path.suffix != ".toml" else {}
                    reader = (
                        _expected_from_vendor if isinstance(raw, dict) and "vendor" in raw else _expected_from_database
                    )
                    name, expected, unmapped = reader(path, checked, zone_of)
                except Exception as exc:
                    err.print(f"[red]{path}: sync check failed:[/red] {type(exc).__name__}: {exc}", highlight=False)
                    below.append(str(path))
                    continue
                rows = compare(name, expected, ingested_tallies(client, name, checked), checked)
                write_rows(client, rows, datetime.now(UTC))
                for r in rows:
                    out.print(f"{r.source} {r.store_id} {r.local_date}: {r.sync_rate:.2%} ({r.ingested_tickets} of "
                              f"{r.expected_tickets} POS sales; net {r.ingested_net} of {r.expected_net} minor "
                              f"units; {r.extra_tickets} not in the POS)", highlight=False, soft_wrap=True)  # fmt: skip
                    if r.local_date == checked[-1]:
                        SYNC_RATE.labels(r.source, r.store_id).set(r.sync_rate)
                        SYNC_MISSING.labels(r.source, r.store_id).set(r.missing_tickets)
                    if not r.ok:
                        below.append(f"{r.source} {r.store_id} {r.local_date}: {r.sync_rate:.2%}, missing e.g. "
                                     f"{', '.join(r.missing_sample[:5])}")  # fmt: skip
                if unmapped:
                    err.print(f"{name}: {unmapped} vendor records could not be mapped (see pos.tickets.dlq)")
                SYNC_CHECKED.labels(name).set(time.time())
        finally:
            client.close()
        for line in below:
            err.print(f"[red]under {TARGET:.0%}:[/red] {line}", highlight=False)
        return not below

    if every:
        run_every(parse_duration(every).total_seconds(), run_once, lambda: False)
        return
    if not run_once():
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("poll")(poll)
    app.command("sync-check")(sync_check)
