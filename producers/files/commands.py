"""`tillflow files watch DIR --spec SPEC`: publish tickets from POS export files as they arrive."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from tillflow.console import err, fail, out
from tillflow.shutdown import StopDeadline

EXIT_KAFKA_UNREACHABLE = 2
files_app = typer.Typer(help="Tickets from POS export files (CSV, XML, TXT, fixed-width).", no_args_is_help=True)


@files_app.command("watch")
def watch(
    folder: Annotated[Path, typer.Argument(help="Folder the POS exports into.", file_okay=False, exists=True)],
    spec: Annotated[Path, typer.Option(help="Mapping spec of the files (YAML or TOML).")],
    once: Annotated[bool, typer.Option(help="Take the files that are complete now, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between folder scans.")] = 2.0,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Parse the complete files now in FOLDER (left where they are), print sample rows beside their "
            "tickets and each field's fill rate; publish nothing.",
        ),
    ] = False,
    sample: Annotated[int, typer.Option(help="Tickets shown side by side with --dry-run.")] = 3,
) -> None:
    """Watch FOLDER, publish each complete file's tickets to pos.tickets, and move it to processed/.

    A file with bad lines goes to rejected/ beside <file>.errors.txt naming each line and reason (its good
    tickets are published). Published tickets are remembered under <state_dir>/files/, so the same file
    dropped twice, or a restart mid-file, publishes each ticket once. While Kafka or the registry cannot be
    reached, files stay in FOLDER and the watcher retries with a growing pause (up to a minute). Exit code
    with --once: 1 when a file was rejected, 2 when Kafka could not be reached (the files stay in FOLDER).
    """
    from producers.files.spec import SpecError, load_spec
    from producers.files.watch import FileWatcher, KafkaUnavailable
    from producers.pos.checkpoint import CheckpointStore
    from producers.pos.metrics import REJECTED, TICKETS
    from producers.pos.sink import KafkaSink
    from producers.sender import RecordSender
    from tillflow.kafka import StackNotRunning
    from tillflow.metrics import serve_metrics
    from tillflow.retry import backoff, pause
    from tillflow.settings import load_settings

    try:
        file_spec = load_spec(spec)
    except SpecError as exc:
        fail(str(exc))
        return
    if dry_run:
        _dry_run(folder, file_spec, sample)
        return
    settings = load_settings()
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.metrics_host)

    try:
        sink = KafkaSink(RecordSender(settings), settings)
    except StackNotRunning as exc:
        fail(str(exc))
        return
    store = CheckpointStore(settings.state_dir / "files" / f"{file_spec.name}.sqlite")
    watcher = FileWatcher(file_spec, folder, sink, store)
    stopping = False

    deadline = StopDeadline(settings.stop_timeout_s, "the file watcher")

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        deadline.arm()

    signal.signal(signal.SIGTERM, _stop)
    bad = False
    failures = 0
    while not stopping:
        try:
            outcomes = watcher.scan()
        except KafkaUnavailable as exc:
            waiting = len(watcher.ready())
            if once:
                err.print(f"[red]Kafka unreachable; {waiting} file(s) stay in {folder}:[/red] {exc}", highlight=False)
                store.close()
                raise typer.Exit(EXIT_KAFKA_UNREACHABLE) from None
            # What the producer still holds is dropped; the next try reconciles with the topic and resends.
            sink.sender.reset()
            delay = backoff(failures, max(interval, 1.0), 60.0, jitter=True)
            failures += 1
            err.print(f"[red]Kafka unreachable; {waiting} file(s) wait in {folder}, next try in {delay:.1f}s:[/red] "
                      f"{exc}", highlight=False)  # fmt: skip
            pause(delay, lambda: stopping)
            continue
        if failures:
            out.print("Kafka reachable again")
            failures = 0
        for o in outcomes:
            TICKETS.labels(file_spec.name).inc(o.published)
            REJECTED.labels(file_spec.name).inc(len(o.errors))
            where = o.moved_to.parent.name if o.moved_to else "?"
            out.print(f"{o.name}: {o.tickets} tickets, {o.published} published, {len(o.errors)} errors -> {where}/")
            for e in o.errors[:5]:
                err.print(f"  {o.name}: {e}", highlight=False)
            bad = bad or bool(o.errors)
        if once:
            break
        pause(interval, lambda: stopping)
    store.close()
    if once and bad:
        raise typer.Exit(1)


def _dry_run(folder: Path, file_spec: Any, sample: int) -> None:
    """Parse the complete files in ``folder`` without moving them or publishing: each ticket beside its rows."""
    from datetime import UTC, datetime

    from producers.files.parse import LineError, UndecodableFile, parse_rows, row_ticket_key, rows_to_tickets
    from producers.files.watch import FileWatcher
    from producers.preview import Sample, render

    samples: list[Sample] = []
    tickets = []
    for path in FileWatcher(file_spec, folder, None, None).ready():  # type: ignore[arg-type]
        try:
            records = parse_rows(path.read_bytes(), file_spec)
        except UndecodableFile as exc:
            samples.append(Sample({"file": path.name}, error=f"{path.name}: {exc}"))
            continue
        found, errors = rows_to_tickets(records, file_spec, datetime.now(UTC))
        tickets.extend(found)
        rows = [r for r in records if not isinstance(r, LineError)]
        for t in found:
            number = t.ticket_id.rsplit(":", 1)[1]
            mine = [r for r in rows if row_ticket_key(r) is not None and row_ticket_key(r)[1] == number]  # type: ignore[index]
            src = {"file": path.name, **{f"line {r.line}": r.values for r in mine[:3]}}
            samples.append(Sample(src, [t]))
        samples.extend(Sample({"file": path.name}, error=f"{path.name} {e}") for e in errors)
    render(out, f"{file_spec.name}: files in {folder}", samples, tickets, sample)


def register(app: typer.Typer) -> None:
    app.add_typer(files_app, name="files")
