"""`tillflow dev ...`: the local stack; `tillflow catalogue validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tillflow.console import err, out
from tillflow.settings import load_settings

dev = typer.Typer(help="Start, stop and inspect the local broker and schema registry.", no_args_is_help=True)
catalogue_app = typer.Typer(help="Check a store catalogue.", no_args_is_help=True)


@dev.command("up")
def dev_up(timeout: Annotated[float, typer.Option(help="Seconds to wait for each component.")] = 30.0) -> None:
    """Start the local broker and registry and create the topics (idempotent).

    With TILLFLOW_KAFKA_BOOTSTRAP and TILLFLOW_REGISTRY_URL set, nothing is started: the topics are created
    on that cluster if missing.
    """
    from tillflow.devstack import up

    stack = up(load_settings(), timeout=timeout)
    if stack.get("external"):
        out.print(f"using configured Kafka {stack['bootstrap']} and registry {stack['url']}; nothing started")
    else:
        out.print(f"kafka     {stack['kafka']['bootstrap']}  (pid {stack['kafka']['pid']})")
        out.print(f"registry  {stack['registry']['url']}  (pid {stack['registry']['pid']})")
    created = [t for t, what in stack["topics"].items() if what == "created"]
    out.print(f"topics    {len(stack['topics'])} ready" + (f", created {', '.join(created)}" if created else ""))


@dev.command("down")
def dev_down() -> None:
    """Stop the local broker and registry. Their data stays under the state directory."""
    from tillflow.devstack import down

    stopped = down(load_settings())
    out.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@dev.command("status")
def dev_status() -> None:
    """Show each component, its health and the topics. Exits 1 when the stack is not healthy."""
    from tillflow.devstack import status

    st = status(load_settings())
    if not st.get("components") and not st.get("external"):
        out.print("local stack is not running (tillflow dev up)")
        raise typer.Exit(1)
    table = Table("component", "pid", "address", "state")
    for comp in st["components"]:
        address = st["kafka"]["bootstrap"] if comp["name"] == "kafka" else st["registry"]["url"]
        healthy = st[comp["name"]]["healthy"]
        state = "healthy" if healthy else ("running, not answering" if comp["running"] else "stopped")
        table.add_row(comp["name"], str(comp["pid"]), address, state)
    if st.get("external"):
        table.add_row("kafka", "-", st["kafka"]["bootstrap"], "healthy" if st["kafka"]["healthy"] else "down")
        table.add_row("registry", "-", st["registry"]["url"], "healthy" if st["registry"]["healthy"] else "down")
    out.print(table)
    for name in ("kafka", "registry"):
        if st[name].get("problem"):
            err.print(f"{name}: {st[name]['problem']}", highlight=False, soft_wrap=True)
    if st.get("topics"):
        topics = Table("topic", "partitions")
        for name, parts in st["topics"].items():
            topics.add_row(name, str(parts))
        out.print(topics)
    if not st["running"]:
        raise typer.Exit(1)


@catalogue_app.command("validate")
def catalogue_validate(path: Annotated[Path, typer.Argument(help="Catalogue file (.yaml or .toml).")]) -> None:
    """Validate a store catalogue; prints each problem as file: key: reason."""
    from schemas.catalogue import load_catalogue

    cat = load_catalogue(path)
    out.print(f"{path}: {len(cat.stores)} stores, {len(cat.cameras)} cameras: valid")


def demo(
    day: Annotated[
        str | None,
        typer.Option(
            "--date", help="Local date to simulate (default: yesterday, UTC; a past day, so every hour can close)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    fps: Annotated[float, typer.Option(help="Camera frames per second in the simulation.")] = 0.2,
    day_seconds: Annotated[float, typer.Option(help="Wall-clock seconds one simulated day takes.")] = 90.0,
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Keep running until Ctrl-C.")] = False,
    timeout: Annotated[float, typer.Option(help="Stop after this many seconds at the latest.")] = 420.0,
) -> None:
    """Run the whole pipeline locally: a simulated estate, live conversion and alerts, then a summary.

    Starts a fresh local stack under <state_dir>/demo, the stream worker, the ClickHouse sink (embedded
    chDB) and the simulator (one day compressed into --day-seconds, with a sales drop, a silent POS feed, a
    dead camera, late and duplicated events injected), and shows conversion per store and alerts as they
    update. Finishes by itself once every hour is final (or after --timeout); --keep-running keeps it up
    until Ctrl-C, which stops everything in order and prints the summary. Always local: a configured
    Kafka, registry or ClickHouse (TILLFLOW_KAFKA_BOOTSTRAP, TILLFLOW_REGISTRY_URL, TILLFLOW_CLICKHOUSE_URL
    and their security settings) is ignored.
    """
    from datetime import UTC, date, datetime, timedelta

    from tillflow import demo as demo_mod

    if day:
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise typer.BadParameter(f"{day!r} is not a date: use YYYY-MM-DD", param_hint="'--date'") from None
    else:
        when = datetime.now(UTC).date() - timedelta(days=1)
        while when.weekday() == 6:
            when -= timedelta(days=1)
    result = demo_mod.run(load_settings(), when, seed, fps, day_seconds, keep_running, timeout)
    demo_mod.print_summary(result)


def register(app: typer.Typer) -> None:
    app.add_typer(dev, name="dev")
    app.add_typer(catalogue_app, name="catalogue")
    app.command("demo")(demo)
