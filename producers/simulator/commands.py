"""`tillflow simulate`: a seeded store estate to Kafka or to JSONL files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tillflow.console import err, fail, out, progress


def load_scenario(path: Path) -> dict[str, Any]:
    """A YAML scenario: optional ``seed``, ``start``, ``days``, ``fps``, ``catalogue`` and ``incidents``
    (each a CLI string or a mapping with ``kind`` and the incident's keys)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of seed, start, days, fps, catalogue, incidents")
    unknown = sorted(set(data) - {"seed", "start", "days", "fps", "catalogue", "incidents"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("incidents", []), list):
        raise ValueError(f"{path}: incidents: expected a list")
    return data


def simulate_command(
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write tickets.jsonl, counts.jsonl, incidents.json and summary.json here instead of Kafka."
        ),
    ] = None,
    catalogue: Annotated[Path | None, typer.Option(help="Store catalogue; default: the `catalogue` setting.")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed; the same seed gives the same events. (default: 0)")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First local date simulated (YYYY-MM-DD). (default: today, UTC)")
    ] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Number of days. (default: 1)")] = None,
    fps: Annotated[
        float | None, typer.Option(help="Camera frames per second. (default: the `simulator_fps` setting)")
    ] = None,
    incident: Annotated[
        list[str] | None,
        typer.Option(
            "--incident",
            "-i",
            help="Inject an incident, KIND:key=value,... (repeatable), e.g. "
            "sales-drop:store=wg-volt,at=2026-03-30T14,factor=0.2. Kinds: sales-drop, traffic-drop, "
            "underreporting, silent-feed, dead-camera, late, duplicate, understaffed, queue-long "
            "(see docs/simulator.md).",
        ),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option(help="YAML scenario (seed, start, days, fps, incidents); options override it.")
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Time compression: 1440 replays a day in a minute, 1 is real time. "
            "(default: as fast as possible with --out, else the `simulator_speed` setting)"
        ),
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="As fast as possible (no pacing).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    staffing: Annotated[
        bool,
        typer.Option(
            "--staffing/--no-staffing",
            help="Also publish each store's staff rota on staff.shifts (shifts.jsonl with --out).",
        ),
    ] = True,
) -> None:
    """Simulate a store estate: POS tickets, per-frame camera counts and staff shifts, with optional incidents.

    Footfall follows weekday and hourly curves in each store's local time within its opening hours;
    conversion, baskets, tender mix, discounts, refunds, voids and employee sales follow the store's category.
    Queue cameras (role queue) report the people waiting at the tills; ticket lines carry the categories the
    store's zones list. Events go to the topics pos.tickets, camera.counts and staff.shifts (the configured
    cluster or the local stack), or
    with --out to JSONL files plus incidents.json, the ground truth of what was injected. With metrics_port
    set, /metrics counts the events sent per topic and shows the simulated clock. Events are sent when
    their (compressed) delivery time comes; late and duplicated deliveries are injected as incidents.
    """
    from producers.simulator.engine import SimulationConfig, injected, simulate
    from producers.simulator.incidents import IncidentError, incident_from
    from producers.simulator.output import INCIDENTS_FILE, SUMMARY_FILE, JsonlSink, Summary, paced, write_incidents
    from schemas.catalogue import CatalogueError, load_catalogue
    from tillflow.settings import load_settings

    settings = load_settings()
    plan: dict[str, Any] = {}
    if scenario is not None:
        try:
            plan = load_scenario(scenario)
        except ValueError as exc:
            fail(str(exc))
    cat_path = catalogue or (Path(plan["catalogue"]) if "catalogue" in plan else settings.catalogue)
    try:
        cat = load_catalogue(cat_path)
    except CatalogueError as exc:
        fail(str(exc))
    start_value = start if start is not None else plan.get("start")
    try:
        start_date = (
            datetime.now(UTC).date()
            if start_value is None
            else start_value
            if isinstance(start_value, date)
            else date.fromisoformat(str(start_value))
        )
    except ValueError:
        fail(f"--start {start_value!r}: expected a date YYYY-MM-DD")
    try:
        incidents = [incident_from(i) for i in plan.get("incidents", [])]
        incidents += [incident_from(i) for i in incident or []]
        config = SimulationConfig(
            seed=seed if seed is not None else int(plan.get("seed", 0)),
            start=start_date,
            days=days if days is not None else int(plan.get("days", 1)),
            fps=fps if fps is not None else float(plan.get("fps", settings.simulator_fps)),
            incidents=incidents,
            source=settings.simulator_source,
            staffing=staffing,
        )
        truth = injected(cat, config)
    except (IncidentError, ValueError) as exc:
        fail(str(exc))
    pace = None if fast else speed if speed is not None else (None if out_dir is not None else settings.simulator_speed)

    sink: Any
    if out_dir is not None:
        sink = JsonlSink(out_dir)
        write_incidents(out_dir / INCIDENTS_FILE, truth)
        target = str(out_dir)
    else:
        from producers.sender import RecordSender

        try:
            sink = RecordSender(settings)
        except Exception as exc:
            fail(f"cannot reach Kafka / the schema registry: {exc} (is the local stack up? tillflow dev up)")
        target = "Kafka"
    for t in truth:
        where = t.camera_id or t.store_id or "all stores"
        hours = f": {len(t.hours)} open store-hour(s)" if t.store_id else ""
        err.print(f"injecting {t.kind} at {where}{hours} from {t.start:%Y-%m-%d %H:%M}Z", highlight=False)

    if settings.metrics_port is not None:
        from tillflow.metrics import serve_metrics

        serve_metrics(settings.metrics_port, settings.metrics_host)
    from producers.simulator.metrics import RUN

    total_h = config.days * 24 + 24
    summary = RUN.summary = Summary()
    interrupted = False
    _stop_on_sigterm()
    with progress(transient=True) as bar:
        task = bar.add_task(f"simulated hours → {target}", total=total_h, visible=not quiet)
        try:
            for ev in paced(simulate(cat, config), pace):
                sink.send(ev.topic, ev.record)
                summary.add(ev)
                if summary.events % 5000 == 0 and summary.first is not None:
                    bar.update(task, completed=int((ev.emit_at - summary.first).total_seconds() // 3600))
        except KeyboardInterrupt:
            interrupted = True  # deliver what was sent so far, then stop
        finally:
            if out_dir is not None:
                sink.close()
    if out_dir is None:
        from producers.sender import DeliveryError

        try:
            sink.flush()
        except DeliveryError as exc:
            fail(str(exc))
    if out_dir is not None:
        (out_dir / SUMMARY_FILE).write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
    _print_summary(summary, target)
    if interrupted:
        err.print("interrupted: the events above were delivered, the rest of the simulation was not")
        raise typer.Exit(130)


def _stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C, so a supervisor stopping the simulator still gets what was sent delivered."""
    import signal
    import threading

    from tillflow.settings import load_settings
    from tillflow.shutdown import StopDeadline

    deadline = StopDeadline(load_settings().stop_timeout_s, "the simulator")

    def _interrupt(signum: int, frame: object) -> None:
        deadline.arm()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _print_summary(summary: Any, target: str) -> None:
    from rich.table import Table

    out.print(
        f"{summary.events} events to {target}: " + ", ".join(f"{t} {n}" for t, n in sorted(summary.per_topic.items()))
    )
    if summary.late or summary.duplicates:
        out.print(
            "late: "
            + (", ".join(f"{t} {n}" for t, n in sorted(summary.late.items())) or "none")
            + "; duplicates: "
            + (", ".join(f"{t} {n}" for t, n in sorted(summary.duplicates.items())) or "none")
        )
    table = Table("store", "visitors", "transactions", "conversion", "net revenue", "tickets", "frames")
    tv = tt = 0
    for sid, t in sorted(summary.stores.items()):
        tv += t.visitors
        tt += t.transactions
        conv = f"{t.conversion:.1%}" if t.conversion is not None else "-"
        table.add_row(
            sid,
            str(t.visitors),
            str(t.transactions),
            conv,
            f"{t.net_revenue / 100:,.2f} {t.currency}",
            str(t.tickets),
            str(t.frames),
        )
    table.add_row("all", str(tv), str(tt), f"{tt / tv:.1%}" if tv else "-", "", "", "", style="bold")
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_command)
