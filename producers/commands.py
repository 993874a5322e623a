"""`tillflow produce`: validate records in a JSONL file and send the valid ones to a topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from tillflow.console import err, fail, out, progress

if TYPE_CHECKING:
    from producers.jsonl import Reject
    from producers.sender import RecordSender
    from schemas.catalogue import Store
    from schemas.models import Record
    from tillflow.settings import Settings


def produce_command(
    file: Annotated[Path, typer.Argument(help="JSONL file: one record's JSON form per line.")],
    topic: Annotated[str, typer.Option("--topic", "-t", help="Topic to send to, e.g. pos.tickets or camera.counts.")],
    rejects: Annotated[
        Path | None, typer.Option(help="Where invalid lines go. (default: FILE.rejects.jsonl beside FILE)")
    ] = None,
) -> None:
    """Validate each line of FILE with the topic's model and send the valid records (Avro, keyed by store).

    Invalid lines, and lines whose record the Avro schema cannot hold, are written to the rejects file as
    JSON objects with the line number, the reason and the original line; the command then exits with
    status 1 and prints how many were rejected. A clean run removes a rejects file left by an earlier run.
    Blank lines are skipped. Nothing is sent to a topic tillflow does not know.
    """
    from producers.jsonl import Reject, default_rejects_path, read_numbered, redacted_line
    from schemas.topics import topic_spec

    try:
        spec = topic_spec(topic)
    except KeyError as exc:
        fail(str(exc.args[0]))
    if not file.is_file():
        fail(f"{file}: no such file")
    rejects_path = rejects or default_rejects_path(file)
    if rejects_path.resolve() == file.resolve():
        fail(f"--rejects {rejects_path} is the input file")
    from producers.sender import DeliveryError, RecordSender
    from tillflow.settings import load_settings

    bad: list[Reject] = []
    settings = load_settings()
    try:
        sender = RecordSender(settings)
    except Exception as exc:
        fail(f"cannot reach Kafka / the schema registry: {exc} (is the local stack up? tillflow dev up)")
    stores = _stores(settings)
    sent = 0
    stopped: str | None = None
    try:
        with progress(transient=True) as bar:
            task = bar.add_task(f"{file.name} → {topic}", total=None)
            for number, text, item in read_numbered(file, spec.model):
                bar.advance(task)
                if isinstance(item, Reject):
                    bad.append(item)
                    continue
                refused = _store_problem(item, stores)
                if refused is not None:
                    bad.append(Reject(number, refused, redacted_line(text)))
                    continue
                problem = _send(sender, topic, item)
                if problem is None:
                    sent += 1
                elif problem.record_fault:
                    bad.append(Reject(number, problem.reason, text))
                else:
                    stopped = f"stopped at line {number}: {problem.reason}"
                    break
    finally:  # also on Ctrl-C: what was queued is delivered, and the rejects so far are kept
        try:
            sender.flush()
        except DeliveryError as exc:
            stopped = f"{stopped}; {exc}" if stopped else str(exc)
        _write_rejects(rejects_path, bad)
    out.print(f"{sent} records sent to {topic}")
    if bad:
        err.print(f"{len(bad)} line(s) rejected, written to {rejects_path}", highlight=False)
        for r in bad[:5]:
            err.print(f"  line {r.line}: {r.reason}", highlight=False)
    if stopped:
        fail(stopped)
    if bad:
        raise typer.Exit(1)


def _stores(settings: Settings) -> dict[str, Store]:
    """The catalogue's stores by id (what the stream workers count tickets against); none without a catalogue."""
    from schemas.catalogue import load_catalogue

    if not settings.catalogue.is_file():
        err.print(f"no store catalogue at {settings.catalogue}: ticket currencies are not checked", highlight=False)
        return {}
    return {store.id: store for store in load_catalogue(settings.catalogue).stores}


def _store_problem(record: Record, stores: dict[str, Store]) -> str | None:
    """Why the stream workers would refuse a ticket for its store (a currency that is not the store's)."""
    from schemas.models import PosTicket

    if not isinstance(record, PosTicket) or record.store_id not in stores:
        return None
    problem = stores[record.store_id].currency_problem(record.currency)
    return f"ticket {record.ticket_id}: {problem}" if problem else None


class _SendProblem(NamedTuple):
    reason: str
    record_fault: bool
    """True: the record cannot be sent (reject it, go on); False: Kafka or the registry failed (stop)."""


def _send(sender: RecordSender, topic: str, record: Record) -> _SendProblem | None:
    """Queue one record; None when queued, else why not and whose fault it is."""
    from confluent_kafka import KafkaError, KafkaException

    from schemas.serde import EncodeError

    try:
        sender.send(topic, record)
    except EncodeError as exc:
        return _SendProblem(str(exc), True)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
            return _SendProblem(f"record too large for the broker: {error.str()}", True)
        return _SendProblem(f"Kafka refused the record: {exc}", False)
    except Exception as exc:
        return _SendProblem(f"cannot send to Kafka / the schema registry: {exc}", False)
    return None


def _write_rejects(path: Path, bad: list[Reject]) -> None:
    """Write this run's rejects; with none, remove a rejects file an earlier run left (only if it is one)."""
    from producers.jsonl import is_rejects_file

    if bad:
        with path.open("w", encoding="utf-8") as f:
            for r in bad:
                f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    elif path.is_file() and is_rejects_file(path):
        path.unlink()
        err.print(f"removed {path} left by an earlier run: every line of this one was sent", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("produce")(produce_command)
