"""`tillflow produce`: validate records in a JSONL file and send the valid ones to a topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out, progress


def produce_command(
    file: Annotated[Path, typer.Argument(help="JSONL file: one record's JSON form per line.")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic to send to, e.g. pos.tickets or camera.counts.")],
    rejects: Annotated[
        Path | None, typer.Option(help="Where invalid lines go. (default: FILE.rejects.jsonl beside FILE)")
    ] = None,
) -> None:
    """Validate each line of FILE with the topic's model and send the valid records (Avro, keyed by store).

    Invalid lines are written to the rejects file as JSON objects with the line number, the reason and the
    original line; the command then exits with status 1 and prints how many were rejected. Blank lines are
    skipped. Nothing is sent to a topic tillflow does not know.
    """
    from producers.jsonl import Reject, default_rejects_path, read_jsonl
    from schemas.topics import topic_spec

    try:
        spec = topic_spec(topic)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if not file.is_file():
        fail(f"{file}: no such file")
    from producers.sender import DeliveryError, RecordSender
    from tillflow.settings import load_settings

    rejects_path = rejects or default_rejects_path(file)
    bad: list[Reject] = []
    try:
        sender = RecordSender(load_settings())
    except Exception as exc:
        fail(f"cannot reach Kafka / the schema registry: {exc} (is the local stack up? tillflow dev up)")
    sent = 0
    with progress(transient=True) as bar:
        task = bar.add_task(f"{file.name} → {topic}", total=None)
        for item in read_jsonl(file, spec.model):
            if isinstance(item, Reject):
                bad.append(item)
            else:
                sender.send(topic, item)
                sent += 1
            bar.advance(task)
    try:
        sender.flush()
    except DeliveryError as exc:
        fail(str(exc))
    if bad:
        with rejects_path.open("w", encoding="utf-8") as f:
            for r in bad:
                f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    out.print(f"{sent} records sent to {topic}")
    if bad:
        err.print(f"{len(bad)} line(s) rejected, written to {rejects_path}", highlight=False)
        for r in bad[:5]:
            err.print(f"  line {r.line}: {r.reason}", highlight=False)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("produce")(produce_command)
