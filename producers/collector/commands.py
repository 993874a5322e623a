"""`tillflow collect --spec SPEC`: the store-side collector."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from tillflow.console import err, fail, out


def collect(
    spec: Annotated[Path, typer.Option(help="Collector spec (YAML or TOML): name, folder or sqlite source.")],
    until_empty: Annotated[
        bool, typer.Option(help="Exit once the local source is read and the spool is empty (for cron and tests).")
    ] = False,
) -> None:
    """Run inside a store: read the local POS source, spool tickets on disk, send them to the central Kafka.

    Only outbound connections are made. While Kafka (or the registry) is unreachable, tickets wait in the
    spool (SQLite, synchronous writes); they are sent in order when it returns, and a restart or power cut
    neither loses nor duplicates one. Kafka's address, TLS and SASL come from the tillflow settings
    (TILLFLOW_KAFKA_*). With metrics_port set, /metrics reports spool depth, age and Kafka reachability.
    """
    from producers.collector.collect import Collector, CollectorSpecError, load_collector_spec
    from producers.collector.metrics import update
    from producers.files.spec import SpecError
    from producers.pos.lock import AlreadyRunning, exclusive
    from tillflow.kafka import StackNotRunning
    from tillflow.metrics import serve_metrics
    from tillflow.settings import load_settings
    from tillflow.shutdown import StopDeadline

    try:
        cfg = load_collector_spec(spec)
        settings = load_settings()
        collector = Collector(cfg, settings)
    except (CollectorSpecError, SpecError, StackNotRunning) as exc:
        fail(str(exc))
        return
    if settings.metrics_port is not None:
        serve_metrics(settings.metrics_port, settings.metrics_host)
    stopping = False

    deadline = StopDeadline(settings.stop_timeout_s, "the collector")

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        deadline.arm()

    signal.signal(signal.SIGTERM, _stop)
    total = 0
    try:
        with exclusive(settings.state_dir / "collector" / f"{cfg.name}.lock", f"collector {cfg.name}"):
            while not stopping:
                taken, sent = collector.step()
                total += sent
                update(cfg.name, collector)
                idle = collector.spool.depth() == 0 and not collector.forwarder.outstanding and taken == 0
                if until_empty and idle:
                    break
                if not sent:
                    time.sleep(0.2)
    except AlreadyRunning as exc:
        fail(str(exc))
    finally:
        collector.close()
    if collector.forwarder.last_error and not collector.forwarder.kafka_up:
        err.print(f"last Kafka error: {collector.forwarder.last_error}", highlight=False)
    out.print(f"{cfg.name}: {total} tickets sent")


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)
