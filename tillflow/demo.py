"""`tillflow demo`: the whole pipeline on one machine, from a simulated estate to live conversion and alerts.

It runs the same commands an operator would, as processes: a fresh local stack (under
``<state_dir>/demo``), ``tillflow worker``, ``tillflow sink clickhouse`` (the embedded chDB engine) and
``tillflow simulate`` (a day compressed into about a minute and a half, with incidents injected), and shows
the output topics live on a board. It stops by itself once the simulated day is sent and every hour is
final, printing a summary and ``tillflow report`` of one store from ClickHouse; ``--keep-running`` keeps
everything up until Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from schemas.serde import TopicSerde, registry_client
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from tillflow import devstack
from tillflow.board import Board
from tillflow.kafka import consumer_config, endpoints
from tillflow.settings import Settings


def demo_incidents(day: date) -> list[str]:
    """What the demo injects, in `tillflow simulate --incident` syntax (store-local times)."""
    return [
        f"sales-drop:store=wg-grocer,at={day.isoformat()}T15,factor=0.15",
        f"silent-feed:store=wg-fashion,at={day.isoformat()}T16,for=2h",
        f"dead-camera:camera=cam-nyc-soho,at={day.isoformat()}T14,for=3h",
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
    log = logs / f"{name}.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tillflow", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    return DemoProcess(name, proc, log)


def fresh_settings(base: Settings) -> Settings:
    """The demo's own state directory, wiped so each run starts from empty topics."""
    state = base.state_dir / "demo"
    demo = base.model_copy(update={"state_dir": state})
    if not base.kafka_bootstrap:
        devstack.down(demo)
        shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    return demo


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
    """Run the demo; returns the board and what happened (for the summary and for tests)."""
    from rich.live import Live
    from rich.text import Text

    from tillflow.console import err, out

    settings = fresh_settings(base)
    logs = settings.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    err.print(f"starting the local stack under {settings.state_dir} ...")
    stack = devstack.up(settings, timeout=60)
    env = dict(os.environ)
    env.update(
        {
            "TILLFLOW_STATE_DIR": str(settings.state_dir),
            "TILLFLOW_CATALOGUE": str(settings.catalogue),
            "TILLFLOW_STREAMS_IDLE_CLOSE_S": "5",
            # A simulated hour passes in seconds: wait for both inputs before closing an hour (docs/streams.md).
            "TILLFLOW_STREAMS_STREAM_SKEW_S": "0",
            "TILLFLOW_STREAMS_LIVE_THROTTLE_S": "1",
        }
    )
    worker = _spawn("worker", ["worker"], env, logs)
    sink = _spawn("sink", ["sink", "clickhouse"], env, logs)
    sim_args = [
        "simulate",
        "--seed",
        str(seed),
        "--start",
        day.isoformat(),
        "--days",
        "1",
        "--fps",
        str(fps),
        "--speed",
        str(86400 / day_seconds),
        "--quiet",
    ]
    for incident in demo_incidents(day):
        sim_args += ["--incident", incident]
    simulator = _spawn("simulate", sim_args, env, logs)
    board = Board()
    reader = OutputReader(settings)
    # These read the groups' committed offsets only: they never subscribe, so they never join the groups.
    bootstrap = endpoints(settings).bootstrap
    worker_group = Consumer(consumer_config(settings, settings.streams_app_id, bootstrap))
    sink_group = Consumer(consumer_config(settings, settings.sink_group_id, bootstrap))
    started = time.monotonic()
    sizes: dict[str, int] = {}
    quiet_since: float | None = None
    try:
        with Live(board.render(), console=out, refresh_per_second=2, transient=False) as live:
            while True:
                got = reader.poll(board, 0.5)
                sizes = reader.input_sizes()
                elapsed = time.monotonic() - started
                status = (
                    f"{elapsed:5.0f}s  tickets in: {sizes[POS_TICKETS]:,}  camera frames in: "
                    f"{sizes[CAMERA_COUNTS]:,}  conversion updates: {board.updates:,}  alerts: {len(board.alerts)}"
                    f"  simulator: {'running' if simulator.proc.poll() is None else 'done'}"
                )
                live.update(_with_status(board, status, Text))
                for proc in (worker, sink):
                    if proc.proc.poll() is not None:
                        raise RuntimeError(f"the {proc.name} exited with {proc.proc.returncode}; see {proc.log}")
                if simulator.proc.poll() not in (None, 0):
                    raise RuntimeError(f"the simulator exited with {simulator.proc.returncode}; see {simulator.log}")
                done = (
                    simulator.proc.poll() == 0
                    and board.hours
                    and all(r["is_final"] for r in board.hours.values())
                    and reader.lag(worker_group, (POS_TICKETS, CAMERA_COUNTS)) == 0
                )
                quiet_since = (quiet_since or time.monotonic()) if (done and not got) else None
                if not keep_running and quiet_since and time.monotonic() - quiet_since > 5:
                    break
                if not keep_running and elapsed > timeout:
                    err.print(f"stopping after {timeout:.0f}s (--timeout)")
                    break
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        worker.stop()
        _drain(sink, lambda: reader.lag(sink_group, (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, ALERTS)))
        reader.close()
        worker_group.close()
        sink_group.close()
        if not stack.get("external"):
            devstack.down(settings)
    return {"board": board, "sizes": sizes, "incidents": demo_incidents(day), "env": env, "day": day}


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
    firing = [a for a in board.alerts.values() if a["state"] == "FIRING"]
    out.print(f"alerts fired: {len(firing)}")
    for a in sorted(firing, key=lambda a: a["hour_start"]):
        out.print(f"  {a['kind']:<15} {a['store_id']:<12} {a['hour_start']:%Y-%m-%d %H:%M} UTC  {a['message']}")
    out.print("incidents injected: " + "; ".join(result["incidents"]))
    sizes = result.get("sizes") or {}
    out.print(f"events: {sizes.get(POS_TICKETS, 0):,} tickets, {sizes.get(CAMERA_COUNTS, 0):,} camera frames")
    if "env" in result:
        out.print("\nfrom ClickHouse (tillflow report --store wg-grocer):")
        out.print(report(result), highlight=False, markup=False, end="")
        state = result["env"]["TILLFLOW_STATE_DIR"]
        out.print(
            f"the demo's data stays in {state}; e.g. TILLFLOW_STATE_DIR={state} tillflow report --store "
            f"wg-fashion --date {result['day'].isoformat()}"
        )
