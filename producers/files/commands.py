"""`tillflow files watch DIR --spec SPEC`: publish tickets from POS export files as they arrive."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out

EXIT_KAFKA_UNREACHABLE = 2
files_app = typer.Typer(help="Tickets from POS export files (CSV, XML, TXT, fixed-width).", no_args_is_help=True)


@files_app.command("watch")
def watch(
    folder: Annotated[Path, typer.Argument(help="Folder the POS exports into.", file_okay=False, exists=True)],
    spec: Annotated[Path, typer.Option(help="Mapping spec of the files (YAML or TOML).")],
    once: Annotated[bool, typer.Option(help="Take the files that are complete now, then exit.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between folder scans.")] = 2.0,
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

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

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


def register(app: typer.Typer) -> None:
    app.add_typer(files_app, name="files")
