"""`tillflow briefing` (print, save, send one store's morning briefing) and `tillflow sink briefings` (06:00)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out
from tillflow.settings import load_settings


def briefing(
    store: Annotated[str, typer.Option("--store", "-s", help="Store id from the catalogue.")],
    day: Annotated[str, typer.Option("--date", "-d", help="The store's local date the briefing is about.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="Also write the day's chart to this PNG file.")] = None,
    save: Annotated[bool, typer.Option("--save", help="Store it in the briefings table (audit trail).")] = False,
    send: Annotated[
        bool, typer.Option("--send", help="Deliver it through the `briefings` routes of the alert routes file.")
    ] = False,
) -> None:
    """Print a store's morning briefing for a local day, read from ClickHouse.

    Sales, visitors, conversion and average ticket against the same weekday of the four weeks before, the best
    and worst hours, staffing and queue highlights, the day's alerts and its data gaps, from deterministic
    templates (docs/storeops.md). `tillflow sink briefings` sends one per store at 06:00 store-local time.
    """
    from schemas.catalogue import load_catalogue
    from sinks.briefing.service import build, deliver
    from sinks.briefing.service import save as save_briefing
    from tillflow.clickhouse import connect

    try:
        local_date = date.fromisoformat(day)
    except ValueError:
        fail(f"--date {day!r} is not a date like 2026-11-20")
    settings = load_settings()
    catalogue = load_catalogue(settings.catalogue)
    try:
        shop = catalogue.store(store)
    except KeyError as exc:
        fail(str(exc.args[0]))
    try:
        client = connect(settings)
        result, png = build(client, catalogue, store, local_date)
    except Exception as exc:
        fail(f"cannot read ClickHouse: {exc}")
    out.print(result.text, highlight=False)
    if plot is not None:
        plot.write_bytes(png)
        out.print(f"chart: {plot}")
    delivered: list[str] = []
    if send:
        import requests

        from sinks.alerts.routing import load_routes

        routes = settings.alerts_routes
        if routes is None:
            fail("no routing file: set TILLFLOW_ALERTS_ROUTES (see docs/sinks.md)")
        config = load_routes(routes)
        for name, outcome in deliver(requests.Session(), config, shop, result, png).items():
            if outcome.ok:
                delivered.append(name)
            else:
                err.print(f"{name}: not delivered: {outcome.error}")
        out.print(f"delivered to: {', '.join(delivered) or 'no channel'}")
    if save or send:
        save_briefing(client, result, png, delivered, datetime.now(UTC))


def sink_briefings(
    idle_exit: Annotated[
        float | None, typer.Option(help="Stop after one pass when nothing is due (tests, cron).")
    ] = None,
) -> None:
    """Send each store's morning briefing at 06:00 store-local time, for the day before.

    Every minute, stores past 06:00 local without a briefings row for yesterday get one: built from
    ClickHouse, delivered through the `briefings` routes of TILLFLOW_ALERTS_ROUTES, then stored with the
    hour and alert ids it used. A restart neither skips nor repeats one (the table says what was done).
    """
    import requests

    from schemas.catalogue import load_catalogue
    from sinks.alerts.routing import RoutingConfig, load_routes
    from sinks.briefing.service import build, deliver, done_briefings, due, save
    from tillflow.clickhouse import connect

    settings = load_settings()
    catalogue = load_catalogue(settings.catalogue)
    config = load_routes(settings.alerts_routes) if settings.alerts_routes else RoutingConfig()
    client = connect(settings)
    session = requests.Session()
    while True:
        now = datetime.now(UTC)
        todo = due(catalogue, now, done_briefings(client, (now - timedelta(days=3)).date()))
        for store_id, day in todo:
            result, png = build(client, catalogue, store_id, day)
            outcomes = deliver(session, config, catalogue.store(store_id), result, png)
            for name, outcome in outcomes.items():
                if not outcome.ok:
                    err.print(f"briefing {store_id} {day} to {name}: {outcome.error}")
            save(client, result, png, [n for n, o in outcomes.items() if o.ok], now)
            out.print(f"briefing {store_id} {day}: sent to {', '.join(n for n, o in outcomes.items() if o.ok) or '-'}")
        if idle_exit is not None and not todo:
            return
        time.sleep(60)


def register(app: typer.Typer) -> None:
    from sinks.commands import sink_app

    app.command("briefing")(briefing)
    sink_app.command("briefings")(sink_briefings)
