"""`tillflow shifts poll` (Square timecards, Clover shifts) and `tillflow shifts watch` (rota / clock-in CSVs)."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tillflow.console import err, fail, out
from tillflow.shutdown import StopDeadline

log = logging.getLogger(__name__)
shifts_app = typer.Typer(
    help="Staff shifts into staff.shifts (no names: pseudonymous staff ids).", no_args_is_help=True
)


@shifts_app.command("poll")
def poll_shifts(
    source: Annotated[
        Path, typer.Argument(help="Source file (YAML or TOML), as for `tillflow poll`: vendor square or clover.")
    ],
    every: Annotated[
        str | None, typer.Option(help="Run on a schedule: 5m, 15m, hourly. Without it, sync once.")
    ] = None,
) -> None:
    """Sync shifts from a POS labour API into staff.shifts: Square timecards or Clover employee shifts.

    Each run reads the shifts that started since the source's position (kept at the oldest open shift and at
    least a day behind the newest, so clock-outs and corrections are read again) and publishes those that are
    new or changed. Staff are published as a digest of source and employee id, never a name. Records that cannot
    be mapped go to staff.shifts.dlq with the reason (names scrubbed). The checkpoint lives under
    <state_dir>/staff/. Exit code 2 when the vendor API or Kafka kept failing (checkpoint kept).
    """
    from producers.pos.checkpoint import CheckpointStore
    from producers.pos.http import AuthFailed, SourceUnavailable, TokenFile
    from producers.pos.poller import make_client
    from producers.pos.schedule import run_every
    from producers.pos.source import SourceError, load_source, parse_duration
    from producers.pos.vendors import adapter_for
    from producers.sender import DeliveryError, RecordSender
    from producers.staff.metrics import SHIFT_SYNC_ERRORS, SHIFTS, SHIFTS_LAST_SUCCESS, SHIFTS_REJECTED
    from producers.staff.poller import KafkaShiftSink, ShiftPoller, labor_auth
    from tillflow.kafka import StackNotRunning
    from tillflow.metrics import serve_metrics
    from tillflow.settings import load_settings

    try:
        cfg = load_source(source)
        interval = parse_duration(every) if every else None
    except (SourceError, ValueError) as exc:
        fail(str(exc))
        return
    settings = load_settings()
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.metrics_host)
    state = settings.state_dir / "staff"
    state.mkdir(parents=True, exist_ok=True)
    stopping = False

    def stopped() -> bool:
        return stopping

    store = CheckpointStore(state / f"{cfg.name}.sqlite")
    try:
        client = make_client(cfg, labor_auth(adapter_for(cfg)), TokenFile(state / f"{cfg.name}.tokens.json"),
                             stopped=stopped)  # fmt: skip
        poller = ShiftPoller(cfg, KafkaShiftSink(RecordSender(settings)), store, client, stopped=stopped)
    except (SourceError, ValueError, StackNotRunning) as exc:
        fail(str(exc))
        return

    deadline = StopDeadline(settings.stop_timeout_s, "the shift poller")

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        deadline.arm()

    signal.signal(signal.SIGTERM, _stop)

    def run_once() -> Any:
        try:
            result = poller.sync()
        except (SourceUnavailable, AuthFailed, DeliveryError) as exc:
            SHIFT_SYNC_ERRORS.labels(cfg.name, type(exc).__name__).inc()
            err.print(f"[red]{cfg.name}: shift sync stopped, checkpoint kept:[/red] {exc}", highlight=False)
            return None
        SHIFTS.labels(cfg.name).inc(result.published)
        SHIFTS_REJECTED.labels(cfg.name).inc(result.rejected)
        SHIFTS_LAST_SUCCESS.labels(cfg.name).set(time.time())
        out.print(f"{cfg.name}: {result.records} shift records in {result.pages} pages, {result.published} published, "
                  f"{result.unchanged} unchanged, {result.rejected} rejected")  # fmt: skip
        for reason in result.errors[:5]:
            err.print(f"  rejected: {reason}", highlight=False)
        return result

    try:
        if interval is None:
            if run_once() is None:
                raise typer.Exit(2)
            return
        run_every(interval.total_seconds(), run_once, stopped)
    finally:
        store.close()


@shifts_app.command("watch")
def watch_rota(
    folder: Annotated[Path, typer.Argument(help="Inbox of rota / clock-in CSV files.")],
    name: Annotated[str, typer.Option(help="Source name (the shifts' `source` and shift id prefix).")],
    once: Annotated[bool, typer.Option(help="Take the files that are complete now, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between folder scans.")] = 2.0,
) -> None:
    """Watch FOLDER for rota / clock-in CSVs and publish each row as a shift to staff.shifts.

    Columns: store_id, shift_id, employee_id, role, start, end, break_start, break_end, deleted (ISO 8601 times;
    without an offset, the store's local time). Files move to processed/, or to rejected/ beside
    <file>.errors.txt naming each bad line. A restart or the same file dropped again publishes nothing twice;
    a changed row (a clock-out, deleted=1) is published again.
    """
    from producers.pos.checkpoint import CheckpointStore
    from producers.sender import RecordSender
    from producers.staff.metrics import SHIFTS, SHIFTS_REJECTED
    from producers.staff.poller import KafkaShiftSink
    from producers.staff.rota import RotaSpec, RotaWatcher
    from schemas.catalogue import load_catalogue
    from tillflow.retry import pause
    from tillflow.settings import load_settings

    settings = load_settings()
    catalogue = load_catalogue(settings.catalogue)
    store = CheckpointStore(settings.state_dir / "staff" / f"{name}.sqlite")
    watcher = RotaWatcher(RotaSpec(name=name), folder, KafkaShiftSink(RecordSender(settings)), store, catalogue)
    stopping = False
    deadline = StopDeadline(settings.stop_timeout_s, "the rota watcher")

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        deadline.arm()

    signal.signal(signal.SIGTERM, _stop)
    bad = False
    while not stopping:
        for o in watcher.scan():
            SHIFTS.labels(name).inc(o.published)
            SHIFTS_REJECTED.labels(name).inc(len(o.errors))
            where = o.moved_to.parent.name if o.moved_to else "?"
            out.print(f"{o.name}: {o.tickets} shifts, {o.published} published, {len(o.errors)} errors -> {where}/")
            for e in o.errors[:5]:
                err.print(f"  {o.name}: {e}", highlight=False)
            bad = bad or bool(o.errors)
        if once:
            break
        pause(interval, lambda: stopping)
    store.close()
    if once and bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(shifts_app, name="shifts")
