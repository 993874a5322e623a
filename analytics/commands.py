"""`tillflow statements`, `tillflow lift` and `tillflow forecast`: malls and chains, from what ClickHouse holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tillflow.console import err, fail, out
from tillflow.lifecycle import TERMINATE, stop_on_signals
from tillflow.settings import load_settings


def statements(
    mall: Annotated[str, typer.Option("--mall", "-m", help="Mall id from the catalogue.")],
    month: Annotated[str, typer.Option("--month", help="Month, YYYY-MM (store-local calendar).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the CSV and PDF.")] = Path("."),
    record: Annotated[
        bool, typer.Option(help="Record the issue in ClickHouse (tenant_statements); --no-record for a preview.")
    ] = True,
) -> None:
    """Tenant revenue statements for a mall's month: net sales by channel and kind from POS data, percentage rent
    owed under each lease (TILLFLOW_LEASES), data completeness, and underreporting evidence.

    Writes statements-MALL-MONTH-issueN.csv and .pdf under --out. Money is exact, in the tenant's currency.
    A month re-issued after late data gets the next issue number and lists what changed since the previous
    issue; when nothing changed the issue number stays. Needs the ClickHouse schema (tillflow clickhouse migrate).
    """
    from analytics.documents import write_csv, write_pdf
    from analytics.leases import load_leases
    from analytics.statements import month_start
    from analytics.warehouse import issue_statements, mall_statements
    from schemas.catalogue import load_catalogue
    from schemas.models import format_minor
    from tillflow.clickhouse import connect
    from tillflow.extras import missing_extra

    problem = missing_extra("the statements PDF", "fpdf")
    if problem:
        fail(problem)
    try:
        first = month_start(month)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--month'") from None
    settings = load_settings()
    catalogue = load_catalogue(settings.catalogue)
    book = load_leases(settings.leases, catalogue)
    if not any(s.mall_id == mall for s in catalogue.stores):
        fail(f"no store of mall {mall!r} in {settings.catalogue}")
    try:
        client = connect(settings)
        issued = issue_statements(client, mall_statements(client, catalogue, book, mall, first),
                                  datetime.now(UTC), record=record)  # fmt: skip
    except ValueError as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot read ClickHouse (is the schema migrated? tillflow clickhouse migrate): {exc}")
    out_dir.mkdir(parents=True, exist_ok=True)
    issue = max(i.issue for i in issued)
    stem = out_dir / f"statements-{mall}-{first:%Y-%m}-issue{issue}"
    write_csv(issued, stem.with_suffix(".csv"))
    write_pdf(issued, stem.with_suffix(".pdf"), mall_name=mall)
    for item in issued:
        st = item.statement
        c = st.completeness
        what = f"issue {item.issue}" + (f", {len(item.changes)} figures changed" if item.changes else "")
        out.print(
            f"{st.tenant_id}: counted sales {format_minor(st.counted_sales, st.currency)} {st.currency}, "
            f"percentage rent {format_minor(st.percentage_rent, st.currency)}, rent due "
            f"{format_minor(st.rent_due, st.currency)}; {len(c.silent_days)} silent-feed days, "
            f"{c.late_tickets} tickets after month end ({what})",
            highlight=False,
        )
    err.print(f"wrote {stem}.csv and {stem}.pdf" + ("" if record else " (not recorded)"))


def lift(
    campaign_id: Annotated[str, typer.Argument(help="Campaign id from the calendar (TILLFLOW_CAMPAIGNS).")],
) -> None:
    """Estimate a campaign's effect on visitors, conversion and sales per day, with a 95% interval.

    Difference-in-differences: the campaign's stores (or zone, or category) against themselves over the
    baseline days before it, and against comparable stores (same mall and category) during it. Says
    "cannot tell" when there are no comparable stores, too few days, or an interval too wide to decide.
    Also loads the calendar into ClickHouse, where the campaign_lift view gives the same figures to Grafana.
    """
    from rich.table import Table

    from analytics.campaigns import load_calendar
    from analytics.warehouse import campaign_lift, load_campaigns
    from schemas.catalogue import load_catalogue
    from tillflow.clickhouse import connect

    settings = load_settings()
    try:
        catalogue = load_catalogue(settings.catalogue)
        calendar = load_calendar(settings.campaigns, catalogue)
        campaign = calendar.campaign(campaign_id)
    except KeyError as exc:
        fail(str(exc.args[0]))
    try:
        client = connect(settings)
        load_campaigns(client, calendar, catalogue, datetime.now(UTC))
        found, estimates = campaign_lift(client, campaign, catalogue, calendar)
    except Exception as exc:
        fail(f"cannot read ClickHouse: {exc}")
    where = ", ".join(u.store_id + (f"/{u.zone_id}" if u.zone_id else "") for u in found.treated)
    title = f"{campaign.id} ({campaign.kind}, {where}, {campaign.start} to {campaign.end})"
    table = Table("metric", "baseline days", "campaign days", "lift", "95% interval", "per day", "verdict",
                  title=title, caption=f"compared with {found.comparison}: "
                  f"{', '.join(u.store_id for u in found.controls) or 'none'}")  # fmt: skip
    for e in estimates:
        interval = "-" if e.lift_low is None else f"{e.lift_low:+.1%} to {e.lift_high:+.1%}"
        per_day = "-"
        if e.per_day is not None:
            per_day = f"{100 * e.per_day:+.2f} pts" if e.metric == "conversion" else f"{e.per_day:+,.0f}"
            if e.metric == "sales":
                per_day += " (minor units)"
        lift_text = "-" if e.lift is None else f"{e.lift:+.1%}"
        table.add_row(e.metric, str(e.baseline_days), str(e.campaign_days), lift_text, interval, per_day, e.verdict)
    out.print(table)


def forecast(
    store: Annotated[
        list[str] | None, typer.Option("--store", "-s", help="Store id (repeatable); default: every store.")
    ] = None,
    now: Annotated[
        str | None, typer.Option(help="Issue time, ISO 8601 with offset (default: now); for backfills and tests.")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(help="Issue again every this many seconds (3600: hourly) until SIGTERM; without it, once.", min=1),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the forecasts instead of sending them.")] = False,
) -> None:
    """Forecast each store's visitors and net sales per hour for the rest of its local today and tomorrow, and
    send them to the forecast.hourly topic (landed in ClickHouse by `tillflow sink clickhouse`, drawn beside the
    actuals in the store dashboard).

    Weekday x hour shape from the last six same weekdays in ClickHouse, scaled by the recent level and by
    today's complete hours so far. Each issue supersedes the last: run it hourly (--every 3600, or a timer).
    With --every a failed issue (ClickHouse or Kafka away) is reported and the next one is tried on time.
    """

    from schemas.catalogue import load_catalogue
    from tillflow.retry import pause

    settings = load_settings()
    if now and every:
        raise typer.BadParameter("--now issues once; it cannot be combined with --every", param_hint="'--now'")
    try:
        issued = datetime.fromisoformat(now) if now else None
    except ValueError:
        raise typer.BadParameter(f"{now!r} is not an ISO 8601 time", param_hint="'--now'") from None
    if issued is not None and issued.tzinfo is None:
        raise typer.BadParameter(f"{now!r} has no UTC offset", param_hint="'--now'")
    try:
        catalogue = load_catalogue(settings.catalogue)
        stores = store or [s.id for s in catalogue.stores]
        for store_id in stores:
            catalogue.store(store_id)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if every is None:
        problem = _issue_forecasts(settings, catalogue, stores, issued or datetime.now(UTC), dry_run)
        if problem:
            fail(problem)
        return
    with stop_on_signals(signals=TERMINATE) as stop:
        while not stop.is_set():
            problem = _issue_forecasts(settings, catalogue, stores, datetime.now(UTC), dry_run)
            if problem:
                err.print(f"forecast not issued: {problem}", highlight=False, soft_wrap=True)
            if pause(every, stop.is_set):
                break
    err.print("stopped on SIGTERM")


def _issue_forecasts(settings: Any, catalogue: Any, stores: list[str], issued: datetime, dry_run: bool) -> str | None:
    """One issue of forecasts for ``stores``, printed or sent; the reason when it could not be made."""
    from analytics.warehouse import store_forecasts
    from schemas.models import format_minor
    from schemas.topics import FORECAST_HOURLY
    from tillflow.clickhouse import connect

    try:
        found = store_forecasts(connect(settings), catalogue, stores, issued.astimezone(UTC))
    except Exception as exc:
        return f"cannot read ClickHouse: {exc}"
    stores_with = len({f.store_id for f in found})
    what = f"{len(found)} hourly forecasts for {stores_with} store{'' if stores_with == 1 else 's'}"
    if dry_run:
        for f in found:
            out.print(f"{f.store_id} {f.local_hour} +{f.horizon_hours}h visitors {f.visitors:.1f} "
                      f"sales {format_minor(f.net_revenue, f.currency or 'EUR')}", highlight=False)  # fmt: skip
        out.print(f"issued {what} at {issued:%Y-%m-%d %H:%M:%S%z} (dry run, not sent)")
        return None
    from tillflow.kafka import StackNotRunning
    from tillflow.sender import DeliveryError, RecordSender

    try:
        sender = RecordSender(settings)
        sender.send_many(FORECAST_HOURLY, found)
        sender.flush()
    except (StackNotRunning, DeliveryError) as exc:
        return str(exc)
    out.print(f"sent {what} to {FORECAST_HOURLY}")
    return None


def register(app: typer.Typer) -> None:
    app.command("statements")(statements)
    app.command("lift")(lift)
    app.command("forecast")(forecast)
