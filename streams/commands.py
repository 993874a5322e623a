"""`tillflow worker`, `tillflow replay`, `tillflow recompute` and `tillflow backfill`: the stream processor
and its batch twins."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tillflow.console import err, fail, out, progress


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("replay")(replay)
    app.command("recompute")(recompute)
    app.command("backfill")(backfill)


def _catalogue(path: Path | None):  # type: ignore[no-untyped-def]
    from schemas.catalogue import CatalogueError, load_catalogue
    from tillflow.settings import load_settings

    settings = load_settings()
    path = path or settings.catalogue
    try:
        return settings, path, load_catalogue(path)
    except CatalogueError as exc:
        fail(str(exc))
        raise


def worker(
    stores: Annotated[Path | None, typer.Option(help="Store catalogue; default: the `catalogue` setting.")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics on this port (0: any free port).")
    ] = None,
    app_id: Annotated[str | None, typer.Option(help="Faust app id; default: the `streams_app_id` setting.")] = None,
    topic_prefix: Annotated[str, typer.Option(help="Prefix of every input and output topic name.")] = "",
    store: Annotated[
        str | None, typer.Option(help="Table store, memory:// or rocksdb:// (default: `streams_store` setting).")
    ] = None,
) -> None:
    """Run the stream processor: live hourly conversion and alerts from pos.tickets and camera.counts.

    Joins tickets and camera counts per store and store-local hour, emits live (throttled) and final
    records to conversion.hourly and alerts to alerts. Start more workers with the same app id to scale
    out; their state recovers from the table changelogs. Stops on Ctrl-C or SIGTERM.
    """
    import faust

    from streams.app import create_app
    from tillflow.kafka import StackNotRunning
    from tillflow.metrics import serve_metrics
    from tillflow.shutdown import StopDeadline

    settings, _path, catalogue = _catalogue(stores)
    try:
        sa = create_app(settings, catalogue, app_id=app_id, topic_prefix=topic_prefix, store=store)
    except StackNotRunning as exc:
        fail(str(exc))
        return
    from streams.replay import run_topics

    # Create the internal ticks and peers topics (and any missing input/output topic) with the input
    # partition count before Faust starts: a broker that auto-creates topics would give them 1 partition.
    run_topics(settings, sa.topics.names)
    port = metrics_port if metrics_port is not None else settings.metrics_port
    if port is not None:
        bound = serve_metrics(port, settings.metrics_host)
        err.print(f"metrics on http://{settings.metrics_host}:{bound}/metrics")
    deadline = StopDeadline(settings.stop_timeout_s, "the stream worker")

    class Worker(faust.Worker):  # type: ignore[misc]
        """Faust's worker, with a bounded stop: SIGTERM or Ctrl-C also arms the stop deadline."""

        def _schedule_shutdown(self, signal: Any) -> None:
            deadline.arm()
            super()._schedule_shutdown(signal)

    Worker(sa.app, loglevel=settings.log_level.lower(), override_logging=False).execute_from_commandline()


def replay(
    stores: Annotated[Path, typer.Option(help="Store catalogue (YAML or TOML).")],
    tickets: Annotated[Path, typer.Option(help="PosTicket records, one JSON object per line.")],
    counts: Annotated[Path, typer.Option(help="CameraCount records, one JSON object per line.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for conversion.jsonl and alerts.jsonl.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline to finish.")] = 900.0,
    late_tickets: Annotated[
        Path | None, typer.Option(help="PosTicket records delivered late: after all other input was processed.")
    ] = None,
    late_counts: Annotated[
        Path | None, typer.Option(help="CameraCount records delivered late: after all other input was processed.")
    ] = None,
) -> None:
    """Run the whole pipeline on the local stack (or the configured cluster) over recorded files.

    Writes OUT/conversion.jsonl (final records, latest revision of each store-zone-hour) and
    OUT/alerts.jsonl (latest state of each alert) once all input is processed and every hour closed.
    Invalid input lines go to OUT/rejects.jsonl with file, line and reason; the exit code is then 2.
    Runs in its own topics and consumer group: for backfills, what-if runs and reproducible checks.
    --late-tickets/--late-counts are produced once everything else was processed, as an export that
    arrives a day late: their closed hours come out again as corrections (revision + 1).
    """
    from streams.replay import ReplayError
    from streams.replay import replay as run
    from tillflow.kafka import StackNotRunning

    settings, path, catalogue = _catalogue(stores)
    late = [(late_tickets, late_counts)] if late_tickets or late_counts else []
    for f in (tickets, counts, late_tickets, late_counts):
        if f is not None and not f.exists():
            fail(f"{f} does not exist")
    try:
        with progress(transient=True) as bar:
            task = bar.add_task("producing", total=None)
            result = run(
                settings,
                path,
                catalogue,
                tickets,
                counts,
                out_dir,
                timeout=timeout,
                progress=lambda n: bar.advance(task, n),
                late=late,
            )
    except (ReplayError, StackNotRunning) as exc:
        fail(str(exc))
        return
    out.print(
        f"replayed {result.produced} records: {len(result.conversions)} final hours, "
        f"{len(result.alerts)} alerts -> {out_dir}"
    )
    if result.rejected:
        err.print(f"{result.rejected} invalid lines in {out_dir / 'rejects.jsonl'}")
        raise typer.Exit(2)


def recompute(
    stores: Annotated[Path, typer.Option(help="Store catalogue (YAML or TOML).")],
    tickets: Annotated[Path, typer.Option(help="PosTicket records, one JSON object per line.")],
    counts: Annotated[Path, typer.Option(help="CameraCount records, one JSON object per line.")],
    check: Annotated[
        Path | None, typer.Option(help="A conversion.jsonl (from replay) to compare with, cell by cell.")
    ] = None,
) -> None:
    """Recompute the final hourly metrics from raw event files in plain Python, without a broker.

    Prints the records as JSON lines, or with --check compares them with a replay's conversion.jsonl
    and lists every differing cell (exit code 1 when any differs).
    """
    import json

    from streams.batch import compare, read_jsonl
    from streams.batch import recompute as compute

    _settings, _path, catalogue = _catalogue(stores)
    try:
        cells = compute(catalogue, read_jsonl(tickets), read_jsonl(counts))
    except ValueError as exc:
        fail(str(exc))
        return
    if check is None:
        for cell in sorted(cells, key=lambda c: (c[0], c[1] or "", c[2])):
            out.print(json.dumps(cells[cell]), highlight=False, soft_wrap=True)
        return
    problems = compare(read_jsonl(check), cells)
    for problem in problems:
        out.print(problem, highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{len(cells)} cells equal")


def backfill(
    stores: Annotated[Path, typer.Option(help="Store catalogue (YAML or TOML).")],
    tickets: Annotated[Path, typer.Option(help="Every PosTicket of the store-days to recompute, one JSON per line.")],
    counts: Annotated[Path, typer.Option(help="Every CameraCount of those store-days, one JSON per line.")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the records to this JSONL file instead of sending them.")
    ] = None,
    revision: Annotated[int, typer.Option(help="Revision of the records (above the stream's).")] = 1000,
) -> None:
    """Recompute hours older than the stream's closed-hour retention and send them as corrections.

    The stream applies a late record to its closed hour for `streams_closed_retention_d` days (35); an older
    one goes to the dead-letter topic with a reason that names this command. Give it every record of the
    affected store-days (the re-sent export or the collector's files, together with the dead-lettered
    records): the hours in the files are recomputed with the batch recompute (equal to the stream, cell
    by cell) and sent to conversion.hourly as final records with revision 1000, which ClickHouse keeps
    over the stream's records of those hours. Duplicates count once, as in the stream.
    """
    import json
    import time

    from schemas.models import HourlyConversion
    from schemas.topics import CONVERSION_HOURLY
    from streams.batch import backfill_records, read_jsonl
    from streams.batch import recompute as compute

    settings, _path, catalogue = _catalogue(stores)
    try:
        cells = compute(catalogue, read_jsonl(tickets), read_jsonl(counts))
    except ValueError as exc:
        fail(str(exc))
        return
    records = [
        HourlyConversion.model_validate(r)
        for r in backfill_records(catalogue, cells, int(time.time() * 1000), revision)
    ]
    if out_file is not None:
        with out_file.open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record.to_json(), separators=(",", ":")) + "\n")
        out.print(f"{len(records)} hours recomputed -> {out_file}")
        return
    from producers.sender import RecordSender

    with RecordSender(settings) as sender:
        sent = sender.send_many(CONVERSION_HOURLY, records)
    out.print(f"{sent} hours recomputed and sent to {CONVERSION_HOURLY} (revision {revision})")
