"""`tillflow files watch DIR --spec SPEC`: publish tickets from POS export files as they arrive."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out

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
    dropped twice, or a restart mid-file, publishes each ticket once. Exit code 1 when --once met a bad file.
    """
    from producers.files.spec import SpecError, load_spec
    from producers.files.watch import FileWatcher
    from producers.pos.checkpoint import CheckpointStore
    from producers.pos.metrics import REJECTED, TICKETS
    from producers.pos.sink import KafkaSink
    from producers.sender import DeliveryError, RecordSender
    from tillflow.kafka import StackNotRunning
    from tillflow.metrics import serve_metrics
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
        sender = RecordSender(settings)
    except StackNotRunning as exc:
        fail(str(exc))
        return
    store = CheckpointStore(settings.state_dir / "files" / f"{file_spec.name}.sqlite")
    watcher = FileWatcher(file_spec, folder, KafkaSink(sender, settings), store)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    bad = False
    while not stopping:
        try:
            outcomes = watcher.scan()
        except DeliveryError as exc:
            err.print(f"[red]Kafka did not acknowledge; files stay in {folder}:[/red] {exc}", highlight=False)
            if once:
                raise typer.Exit(2) from None
            time.sleep(interval)
            continue
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
        time.sleep(interval)
    store.close()
    if once and bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(files_app, name="files")
