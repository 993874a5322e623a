"""`tillflow clickhouse ...`, `tillflow sink ...` and `tillflow report`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out
from tillflow.settings import load_settings

clickhouse_app = typer.Typer(help="Manage tillflow's ClickHouse schema.", no_args_is_help=True)
sink_app = typer.Typer(help="Long-running sinks: ClickHouse tables and on-call alert channels.", no_args_is_help=True)


@clickhouse_app.command("migrate")
def clickhouse_migrate(
    stores: Annotated[bool, typer.Option(help="Also load the catalogue's stores and zones.")] = True,
) -> None:
    """Apply the versioned DDL files of deploy/clickhouse that are not applied yet (idempotent).

    Applied versions and their checksums are kept in the schema_migrations table.
    Editing an applied file is an error: schema changes go in a new file.
    Uses TILLFLOW_CLICKHOUSE_URL, else the embedded chDB engine under the state directory.
    """
    from schemas.catalogue import load_catalogue
    from sinks.clickhouse.migrate import DEFAULT_DIR, applied_versions, load_stores, migrate
    from tillflow.clickhouse import clickhouse_dsn, connect, database_name, redacted
    from tillflow.errors import TillflowError

    settings = load_settings()
    try:
        client = connect(settings, create=True)
        applied = migrate(client, settings.clickhouse_migrations_dir or DEFAULT_DIR)
        versions = applied_versions(client)
        if stores:
            n = load_stores(client, load_catalogue(settings.catalogue))
    except TillflowError:
        raise  # its message is the operator's; the CLI prints it
    except Exception as exc:
        fail(f"ClickHouse at {redacted(clickhouse_dsn(settings))}: {exc}")
    where = f"{redacted(clickhouse_dsn(settings))} database {database_name(settings)}"
    if applied:
        out.print(f"{where}: applied {', '.join(m.name for m in applied)}")
    else:
        out.print(f"{where}: up to date")
    out.print(f"schema version {max(versions, default=0)}" + (f", {n} stores loaded" if stores else ""))


@sink_app.command("clickhouse")
def sink_clickhouse(
    idle_exit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without new records (for backfills).")
    ] = None,
) -> None:
    """Write pos.tickets, camera.counts, conversion.hourly, alerts and forecast.hourly to ClickHouse.

    Migrates the schema first. Records are batched (TILLFLOW_SINK_BATCH_ROWS, TILLFLOW_SINK_BATCH_SECONDS).
    Offsets are committed only after ClickHouse accepted a batch; replaying a topic leaves the same rows.
    While ClickHouse is down the batch is retried with backoff, nothing new is read.
    Unreadable or refused records go to <topic>.dlq with the reason.
    Serves /metrics when TILLFLOW_METRICS_PORT is set. Stops cleanly on SIGTERM.
    """
    from sinks.clickhouse.service import run_sink

    stats = run_sink(load_settings(), idle_exit=idle_exit)
    err.print(
        f"consumed {stats.consumed}, written {stats.written}, dead-lettered {stats.dead_lettered} "
        f"in {stats.batches} batches ({stats.retries} retries)"
    )


@sink_app.command("alerts")
def sink_alerts(
    idle_exit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds with nothing to consume or deliver.")
    ] = None,
) -> None:
    """Send alerts to Slack, Microsoft Teams, PagerDuty and signed webhooks, as routed by TILLFLOW_ALERTS_ROUTES.

    Each alert is first stored in a durable outbox under the state directory, then its offset is committed.
    The outbox holds one delivery per alert id, state and channel: a re-emitted alert is not sent twice.
    Failed deliveries are retried with backoff; rate limits defer deliveries instead of dropping them.
    """
    from sinks.alerts.service import run_alert_sink

    stats = run_alert_sink(load_settings(), idle_exit=idle_exit)
    err.print(f"consumed {stats.consumed}, queued {stats.queued}, delivered {stats.delivered}, dead {stats.dead}")


@sink_app.command("outbox")
def sink_outbox(
    requeue_dead: Annotated[bool, typer.Option(help="Put parked (dead) deliveries back in the queue.")] = False,
) -> None:
    """Show the alert sink's durable outbox: counts by status, and deliveries not yet made with their error.

    With --requeue-dead, parked deliveries are retried by the running (or next) `tillflow sink alerts`.
    """
    import time

    from rich.table import Table

    from sinks.alerts.outbox import Outbox

    settings = load_settings()
    path = settings.state_dir / "alerts" / "outbox.sqlite"
    if not path.exists():
        fail(f"no outbox at {path}: `tillflow sink alerts` has not run with this state directory")
    box = Outbox(path)
    if requeue_dead:
        out.print(f"requeued {box.requeue_dead(time.time())} dead deliveries")
    counts = box.counts()
    out.print(", ".join(f"{k} {v}" for k, v in counts.items()))
    dead = [r for r in box.rows() if r["status"] != "delivered"]
    if dead:
        table = Table("alert", "state", "channel", "status", "attempts", "last error")
        for row in dead:
            table.add_row(*(str(row[k] if row[k] is not None else "") for k in
                            ("alert_id", "state", "channel", "status", "attempts", "last_error")))  # fmt: skip
        out.print(table)


def report(
    store: Annotated[str, typer.Option("--store", "-s", help="Store id from the catalogue.")],
    day: Annotated[str, typer.Option("--date", "-d", help="The store's local date, YYYY-MM-DD.")],
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot", help="Also draw the day as a PNG: visitors as bars, conversion as a line, alerts marked."
        ),
    ] = None,
) -> None:
    """Print a store's day from ClickHouse: one row per store-local hour with footfall, sales and conversion."""
    from rich.table import Table

    from sinks.report import HEADERS, fetch_hours, report_rows
    from tillflow.clickhouse import connect

    try:
        local_date = date.fromisoformat(day)
    except ValueError:
        fail(f"--date {day!r} is not a date like 2026-11-20")
    settings = load_settings()
    try:
        hours = fetch_hours(connect(settings), store, local_date)
    except Exception as exc:
        fail(f"cannot read ClickHouse: {exc}")
    if not hours:
        fail(f"no hourly conversion for store {store!r} on {local_date} (has `tillflow sink clickhouse` run?)")
    table = Table(*HEADERS, title=f"{store} on {local_date} ({hours[0]['timezone']}, {hours[0]['currency']})")
    for column in table.columns:
        column.no_wrap = True
        if column.header != "hour":
            column.justify = "right"
    table.caption = "conv. = transactions / visitors; UPT = units per transaction; money in major units"
    rows = report_rows(hours)
    for row in rows[:-1]:
        table.add_row(*row)
    table.add_section()
    table.add_row(*rows[-1], style="bold")
    out.print(table)
    if plot is not None:
        from schemas.catalogue import load_catalogue
        from sinks.briefing.service import build

        catalogue = load_catalogue(settings.catalogue)
        _, png = build(connect(settings), catalogue, store, local_date)  # the briefing's chart
        plot.write_bytes(png)
        out.print(f"chart: {plot}")


def register(app: typer.Typer) -> None:
    app.add_typer(clickhouse_app, name="clickhouse")
    app.add_typer(sink_app, name="sink")
    app.command("report")(report)
