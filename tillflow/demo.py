"""`tillflow demo`: the whole pipeline on one machine, from a simulated estate to live conversion and alerts.

It runs the same commands an operator would, as processes: a fresh local stack (under
``<state_dir>/demo``), ``tillflow worker``, ``tillflow sink clickhouse`` (the embedded chDB engine) and
``tillflow simulate`` (a day compressed into about a minute and a half, with incidents injected), and shows
the output topics live on a board. It stops by itself once the simulated day is sent and every hour is
final, printing a summary and ``tillflow report`` of one store from ClickHouse; ``--keep-running`` keeps
everything up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from schemas.serde import TopicSerde, registry_client
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS, STAFF_SHIFTS, STOREOPS_HOURLY
from tillflow import devstack
from tillflow.board import Board
from tillflow.errors import UnavailableError
from tillflow.kafka import consumer_config, endpoints
from tillflow.lifecycle import raise_keyboard_interrupt, signal_handlers
from tillflow.settings import CONFIG_ENV, Settings


def demo_incidents(day: date) -> list[str]:
    """What the demo injects, in `tillflow simulate --incident` syntax (store-local times)."""
    return [
        f"sales-drop:store=wg-grocer,at={day.isoformat()}T15,factor=0.15",
        f"silent-feed:store=wg-fashion,at={day.isoformat()}T16,for=2h",
        f"dead-camera:camera=cam-nyc-soho,at={day.isoformat()}T14,for=3h",
        f"queue-long:store=nyc-soho,at={day.isoformat()}T12:10,for=20m",
        f"understaffed:store=wg-grocer,at={day.isoformat()}T18",
        "late:fraction=0.02,minutes=15",
        "duplicate:fraction=0.01",
    ]


@dataclass
class DemoProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path) -> DemoProcess:
    """Start ``tillflow ARGS`` in a session of its own: Ctrl-C in the terminal reaches the demo only, which
    then stops the processes in order (simulator, worker, then the sink once it has read everything)."""
    log = logs / f"{name}.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tillflow", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return DemoProcess(name, proc, log)


# Settings that point at a real cluster, registry or ClickHouse server, or only make sense there. The demo
# always runs on its own fresh local stack and embedded chDB: it resets these, for itself and its processes.
REMOTE_SETTINGS = (
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_ca_location",
    "kafka_ssl_certificate_location",
    "kafka_ssl_key_location",
    "kafka_client_config",
    "topic_replication_factor",
    "registry_url",
    "registry_basic_auth",
    "registry_ssl_ca_location",
    "clickhouse_url",
)


def fresh_settings(base: Settings) -> Settings:
    """The demo's settings: local only (REMOTE_SETTINGS at their defaults), in its own state directory,
    wiped so each run starts from empty topics."""
    state = base.state_dir / "demo"
    local = {name: Settings.model_fields[name].get_default(call_default_factory=True) for name in REMOTE_SETTINGS}
    demo = base.model_copy(update={**local, "state_dir": state})
    devstack.down(demo)
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    return demo


def child_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the demo's processes: ``environ`` without the TILLFLOW_* variables of
    REMOTE_SETTINGS, and TILLFLOW_CONFIG naming a file written from ``settings`` (so what came from the
    user's config file reaches them too, except the remote settings; secrets are left out)."""
    remote = {f"TILLFLOW_{name}".upper() for name in REMOTE_SETTINGS}
    env = {k: v for k, v in environ.items() if k.upper() not in remote}
    values = {
        name: value
        for name, value in settings.model_dump(mode="json", exclude_defaults=True).items()
        if name not in REMOTE_SETTINGS and not isinstance(getattr(settings, name), SecretStr)
    }
    config = settings.state_dir / "demo-settings.yaml"
    config.write_text(
        "# Written by `tillflow demo` for its processes: the configuration without remote endpoints.\n"
        + yaml.safe_dump(values, sort_keys=True)
    )
    env.update(
        {
            CONFIG_ENV: str(config),
            "TILLFLOW_STATE_DIR": str(settings.state_dir),
            "TILLFLOW_CATALOGUE": str(settings.catalogue),
            "TILLFLOW_STREAMS_IDLE_CLOSE_S": "5",
            # A simulated hour passes in seconds: wait for both inputs before closing an hour (docs/streams.md).
            "TILLFLOW_STREAMS_STREAM_SKEW_S": "0",
            "TILLFLOW_STREAMS_LIVE_THROTTLE_S": "1",
        }
    )
    return env


class OutputReader:
    """Reads conversion.hourly and alerts from the start, and the input topics' sizes."""

    def __init__(self, settings: Settings) -> None:
        ep = endpoints(settings)
        registry = registry_client(ep.registry_url)
        self.serdes = {t: TopicSerde(registry, t, auto_register=False) for t in (CONVERSION_HOURLY, ALERTS)}
        self.consumer = Consumer(consumer_config(settings, f"tillflow-demo-board-{os.getpid()}", ep.bootstrap))
        self.consumer.subscribe([CONVERSION_HOURLY, ALERTS])

    def poll(self, board: Board, seconds: float) -> int:
        n = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for msg in self.consumer.consume(500, timeout=0.1):
                topic = msg.topic()
                if msg.error() or topic is None:
                    continue
                rec = self.serdes[topic].decode(msg.value())
                if topic == CONVERSION_HOURLY:
                    board.add_conversion(rec)
                else:
                    board.add_alert(rec)
                n += 1
        return n

    def _ends(self, topic: str) -> dict[TopicPartition, int]:
        md = self.consumer.list_topics(topic, timeout=5).topics[topic]
        return {
            TopicPartition(topic, p): self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
            for p in md.partitions
        }

    def input_sizes(self) -> dict[str, int]:
        return {topic: sum(self._ends(topic).values()) for topic in (POS_TICKETS, CAMERA_COUNTS)}

    def lag(self, group: Consumer, topics: tuple[str, ...]) -> int:
        """Records of ``topics`` that ``group`` has not committed yet."""
        ends = {tp: end for topic in topics for tp, end in self._ends(topic).items()}
        committed = group.committed(list(ends), timeout=5)
        return sum(end - max(tp.offset, 0) for tp, end in zip(committed, ends.values(), strict=True))

    def close(self) -> None:
        self.consumer.close()


def run(
    base: Settings,
    day: date,
    seed: int,
    fps: float,
    day_seconds: float,
    keep_running: bool,
    timeout: float,
) -> dict[str, Any]:
    """Run the demo; returns the board and what happened (for the summary and for tests).

    Ctrl-C (SIGINT), SIGTERM and SIGHUP end the run the same way as finishing: processes stopped in order,
    the stack stopped, the result returned for the summary.
    """
    settings = fresh_settings(base)
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = child_env(settings, os.environ)
    board = Board()
    sizes: dict[str, int] = {}
    with (
        signal_handlers(raise_keyboard_interrupt, (signal.SIGTERM, signal.SIGHUP)),
        contextlib.suppress(KeyboardInterrupt),  # a second Ctrl-C while stopping: the summary still comes
    ):
        _run(settings, env, logs, board, sizes, simulate_args(day, seed, fps, day_seconds), keep_running, timeout)
    return {"board": board, "sizes": sizes, "incidents": demo_incidents(day), "env": env, "day": day}


def simulate_args(day: date, seed: int, fps: float, day_seconds: float) -> list[str]:
    """`tillflow simulate` arguments for the demo's day, compressed into ``day_seconds``, with its incidents."""
    args = ["simulate", "--seed", str(seed), "--start", day.isoformat(), "--days", "1", "--fps", str(fps),
            "--speed", str(86400 / day_seconds), "--quiet"]  # fmt: skip
    for incident in demo_incidents(day):
        args += ["--incident", incident]
    return args


def _run(
    settings: Settings,
    env: dict[str, str],
    logs: Path,
    board: Board,
    sizes: dict[str, int],
    sim_args: list[str],
    keep_running: bool,
    timeout: float,
) -> None:
    """Start the stack and the processes, fill ``board`` and ``sizes`` (of the input topics) until done;
    stop everything on the way out, also when interrupted."""
    from rich.live import Live
    from rich.text import Text

    from tillflow.console import err, out

    err.print(f"starting the local stack under {settings.state_dir} ...")
    procs: list[DemoProcess] = []
    reader: OutputReader | None = None
    groups: list[Consumer] = []
    try:
        devstack.up(settings, timeout=60)
        worker = _spawn("worker", ["worker"], env, logs)
        procs.append(worker)
        sink = _spawn("sink", ["sink", "clickhouse"], env, logs)
        procs.append(sink)
        simulator = _spawn("simulate", sim_args, env, logs)
        procs.insert(0, simulator)
        reader = OutputReader(settings)
        # These read the groups' committed offsets only: they never subscribe, so they never join the groups.
        bootstrap = endpoints(settings).bootstrap
        worker_group = Consumer(consumer_config(settings, settings.streams_app_id, bootstrap))
        sink_group = Consumer(consumer_config(settings, settings.sink_group_id, bootstrap))
        groups += [worker_group, sink_group]
        started = time.monotonic()
        quiet_since: float | None = None
        with Live(board.render(), console=out, refresh_per_second=2, transient=False) as live:
            while True:
                got = reader.poll(board, 0.5)
                sizes.update(reader.input_sizes())
                elapsed = time.monotonic() - started
                status = (
                    f"{elapsed:5.0f}s  tickets in: {sizes[POS_TICKETS]:,}  camera frames in: "
                    f"{sizes[CAMERA_COUNTS]:,}  conversion updates: {board.updates:,}  alerts: {len(board.alerts)}"
                    f"  simulator: {'running' if simulator.proc.poll() is None else 'done'}"
                )
                live.update(_with_status(board, status, Text))
                for proc in (worker, sink):
                    if proc.proc.poll() is not None:
                        raise UnavailableError(f"the {proc.name} exited with {proc.proc.returncode}; see {proc.log}")
                if simulator.proc.poll() not in (None, 0):
                    raise UnavailableError(
                        f"the simulator exited with {simulator.proc.returncode}; see {simulator.log}"
                    )
                done = (
                    simulator.proc.poll() == 0
                    and board.hours
                    and all(r["is_final"] for r in board.hours.values())
                    and reader.lag(worker_group, (POS_TICKETS, CAMERA_COUNTS, STAFF_SHIFTS, CONVERSION_HOURLY)) == 0
                )
                quiet_since = (quiet_since or time.monotonic()) if (done and not got) else None
                if not keep_running and quiet_since and time.monotonic() - quiet_since > 5:
                    break
                if not keep_running and elapsed > timeout:
                    err.print(f"stopping after {timeout:.0f}s (--timeout)")
                    break
    except KeyboardInterrupt:
        err.print("interrupted: stopping the simulator, the worker and the sink ...")
    finally:
        _stop_all(settings, procs, reader, groups)


def _stop_all(
    settings: Settings, procs: list[DemoProcess], reader: OutputReader | None, groups: list[Consumer]
) -> None:
    """Stop the simulator and the worker, let the sink read everything there is, close the clients, stop the
    stack. A second Ctrl-C meanwhile leaves no process behind: each is killed before it propagates."""
    try:
        for proc in procs:
            if proc.name != "sink":
                proc.stop()
        sink = next((p for p in procs if p.name == "sink"), None)
        if sink is not None:
            if reader is not None and len(groups) == 2:
                topics = (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, ALERTS, STAFF_SHIFTS, STOREOPS_HOURLY)
                _drain(sink, lambda: reader.lag(groups[1], topics))
            sink.stop()
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait()
        if reader is not None:
            reader.close()
        for group in groups:
            group.close()
        devstack.down(settings)


def _drain(sink: DemoProcess, lag: Callable[[], int], timeout: float = 60.0) -> None:
    """Let the sink read everything there is (its group's lag reaches 0), then stop it: it flushes and
    commits on SIGTERM."""
    deadline = time.monotonic() + timeout
    while sink.proc.poll() is None and time.monotonic() < deadline and lag() > 0:
        time.sleep(0.5)
    sink.stop()


def report(result: dict[str, Any], store: str = "wg-grocer") -> str:
    """`tillflow report` of one store's simulated day, read back from ClickHouse."""
    done = subprocess.run(
        [sys.executable, "-m", "tillflow", "report", "--store", store, "--date", result["day"].isoformat()],
        env=result["env"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout + (done.stderr if done.returncode else "")


def briefings(result: dict[str, Any], stores: tuple[str, ...] = ("wg-fashion", "wg-grocer")) -> dict[str, str]:
    """`tillflow briefing` of each store for the simulated day (staffing, queues, zones), each with its chart saved
    beside the demo's data; one after the other (the embedded chDB engine takes one process at a time)."""
    texts = {}
    for store in stores:
        chart = Path(result["env"]["TILLFLOW_STATE_DIR"]) / f"briefing-{store}.png"
        args = ["briefing", "--store", store, "--date", result["day"].isoformat(), "--plot", str(chart), "--save"]
        done = subprocess.run([sys.executable, "-m", "tillflow", *args], env=result["env"], capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        texts[store] = done.stdout + (done.stderr if done.returncode else "")
    return texts


def _with_status(board: Board, status: str, text: Any) -> Any:
    from rich.console import Group

    return Group(board.render(), text(status, style="dim"))


def print_summary(result: dict[str, Any]) -> None:
    from rich.table import Table

    from tillflow.console import out

    board: Board = result["board"]
    table = Table(title="demo summary: the simulated day, final hours", title_justify="left")
    for col in ("store", "hours", "visitors", "buyers", "conversion", "revenue"):
        table.add_column(col, justify="left" if col == "store" else "right")
    for store, t in board.totals().items():
        conv = "-" if t["conversion"] is None else f"{t['conversion']:.1%}"
        table.add_row(
            store,
            str(t["hours"]),
            f"{t['visitors']:,}",
            f"{t['transactions']:,}",
            conv,
            f"{t['net_revenue'] / 100:,.2f} {t['currency'] or ''}",
        )
    out.print(table)
    # QUEUE_LONG is an incident: it fires and resolves when the queue clears, so its latest state is RESOLVED.
    firing = [a for a in board.alerts.values() if a["state"] == "FIRING" or a["kind"] == "QUEUE_LONG"]
    out.print(f"alerts fired: {len(firing)}")
    for a in sorted(firing, key=lambda a: a["hour_start"]):
        out.print(f"  {a['kind']:<15} {a['store_id']:<12} {a['hour_start']:%Y-%m-%d %H:%M} UTC  {a['message']}")
    out.print("incidents injected: " + "; ".join(result["incidents"]))
    sizes = result.get("sizes") or {}
    out.print(f"events: {sizes.get(POS_TICKETS, 0):,} tickets, {sizes.get(CAMERA_COUNTS, 0):,} camera frames")
    if "env" in result:
        out.print("\nfrom ClickHouse (tillflow report --store wg-grocer):")
        out.print(report(result), highlight=False, markup=False, end="")
        for store, text in briefings(result).items():
            out.print(f"\nthe morning briefing (tillflow briefing --store {store}):")
            out.print(text, highlight=False, markup=False, end="")
        state = result["env"]["TILLFLOW_STATE_DIR"]
        out.print(
            f"the demo's data stays in {state}; e.g. TILLFLOW_STATE_DIR={state} tillflow report --store "
            f"wg-fashion --date {result['day'].isoformat()}"
        )
