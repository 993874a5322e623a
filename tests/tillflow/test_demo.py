"""`tillflow demo` end to end, as `make demo` runs it: real stack, worker, sink and simulator processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_runs_the_pipeline_and_alerts_exactly_on_the_injected_incidents(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLFLOW_")}
    env.update(TILLFLOW_STATE_DIR=str(tmp_path / "state"), COLUMNS="200", TILLFLOW_CONFIG=str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "tillflow", "demo", "--date", "2026-11-20", "--day-seconds", "30", "--fps", "0.1",
         "--timeout", "400"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:] + out[-3000:]
    summary = out[out.index("demo summary") :]
    fired = [line.split() for line in summary.splitlines() if line.startswith("  ") and "UTC" in line]
    kinds = {(f[0], f[1]) for f in fired}
    # The demo injects a sales drop at wg-grocer, a silent POS feed at wg-fashion and a dead camera at nyc-soho.
    assert ("SALES_DROP", "wg-grocer") in kinds
    assert ("FEED_SILENT", "wg-fashion") in kinds
    assert ("CAMERA_SILENT", "nyc-soho") in kinds
    assert ("UNDERSTAFFED", "wg-grocer") in kinds and ("QUEUE_LONG", "nyc-soho") in kinds  # store operations
    assert {store for _, store in kinds} <= {"wg-grocer", "wg-fashion", "nyc-soho"}  # nowhere else
    for store in ("wg-grocer", "wg-volt", "mum-bandra", "nyc-soho"):  # open on Fridays
        assert f"│ {store}" in summary
    assert "wg-grocer on 2026-11-20 (Europe/Berlin, EUR)" in out  # read back from ClickHouse
    assert "final" in out.split("wg-grocer on 2026-11-20")[1]
    briefing = out[out.index("the morning briefing (tillflow briefing --store wg-grocer)") :]
    assert "Staffing:" in briefing and "staff hours on the floor" in briefing and "Queues: longest" in briefing
    assert "UNDERSTAFFED" in briefing and (tmp_path / "state" / "demo" / "briefing-wg-grocer.png").exists()
    assert "Zones: womens" in out  # wg-fashion's zones, sales attributed by category
    assert not (tmp_path / "state" / "demo" / "stack.json").exists()  # the stack was stopped


def test_the_demo_clears_remote_endpoints_for_itself_and_its_processes(tmp_path: Path) -> None:
    """A configured cluster, registry or ClickHouse never reaches the demo: from the environment or the file."""
    from unittest import mock

    from pydantic import SecretStr

    from tillflow.demo import REMOTE_SETTINGS, child_env, fresh_settings
    from tillflow.settings import Settings

    config = tmp_path / "prod.toml"
    config.write_text('topic_replication_factor = 3\nregistry_url = "https://registry.prod:8081"\n'
                      'simulator_source = "till-42"\n')  # fmt: skip
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "TILLFLOW_CONFIG": str(config),
        "TILLFLOW_KAFKA_BOOTSTRAP": "kafka.prod:9092",
        "TILLFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "TILLFLOW_KAFKA_SASL_PASSWORD": "secret",
        "TILLFLOW_CLICKHOUSE_URL": "https://ch.prod:8443/db",
        "TILLFLOW_STREAMS_ALERTS": '{"sales_drop_ratio": 0.4}',
    }
    with mock.patch.dict(os.environ, environ, clear=True):
        base = Settings(state_dir=tmp_path / "state")
    assert base.kafka_bootstrap and base.registry_url and base.topic_replication_factor == 3
    demo = fresh_settings(base)
    assert demo.state_dir == tmp_path / "state" / "demo"
    for name in REMOTE_SETTINGS:
        assert getattr(demo, name) == Settings.model_fields[name].get_default(call_default_factory=True), name
    env = child_env(demo, environ)
    assert not {k for k in env if k.startswith(("TILLFLOW_KAFKA_", "TILLFLOW_REGISTRY_", "TILLFLOW_CLICKHOUSE_URL"))}
    with mock.patch.dict(os.environ, env, clear=True):
        child = Settings()
    assert child.kafka_bootstrap is None and child.registry_url is None and child.clickhouse_url is None
    assert child.kafka_security_protocol is None and child.topic_replication_factor == 1
    assert child.simulator_source == "till-42"  # the rest of the user's file still applies
    assert child.streams_alerts == {"sales_drop_ratio": 0.4} and child.state_dir == demo.state_dir
    assert "secret" not in Path(env["TILLFLOW_CONFIG"]).read_text()
    assert not any(isinstance(v, SecretStr) for v in child.model_dump().values() if v is not None)


def test_an_invalid_demo_date_is_a_parameter_error() -> None:
    from typer.testing import CliRunner

    from tillflow.cli import app

    result = CliRunner().invoke(app, ["demo", "--date", "2026-13-01"])
    assert result.exit_code == 2
    assert "Invalid value for '--date': '2026-13-01' is not a date: use YYYY-MM-DD" in " ".join(result.output.split())


def _demo_processes(state: Path) -> list[int]:
    """PIDs of processes whose environment names ``state`` as their TILLFLOW_STATE_DIR."""
    marker = f"TILLFLOW_STATE_DIR={state}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_ctrl_c_stops_a_keep_running_demo_in_order_with_a_summary(tmp_path: Path, stack: Any) -> None:
    """Ctrl-C goes to the terminal's whole foreground process group: only the demo may get it. It stops its
    processes itself, prints the summary and exits 0. The demo also ignores the configured cluster (the
    session's stack stands in for production): nothing is sent there."""
    from tests.support.kafka import watermarks
    from tillflow.kafka import endpoints
    from tillflow.settings import Settings

    prod = endpoints(stack)
    before = {t: watermarks(stack, t) for t in ("pos.tickets", "camera.counts")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLFLOW_")}
    env.update(
        TILLFLOW_STATE_DIR=str(tmp_path / "state"), COLUMNS="200", TILLFLOW_CONFIG=str(tmp_path / "none.toml"),
        TILLFLOW_KAFKA_BOOTSTRAP=prod.bootstrap, TILLFLOW_REGISTRY_URL=prod.registry_url,
        TILLFLOW_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", TILLFLOW_KAFKA_SASL_MECHANISM="PLAIN",
        TILLFLOW_CLICKHOUSE_URL="http://127.0.0.1:9/nowhere",
    )  # fmt: skip
    (tmp_path / "none.toml").write_text("")
    demo = subprocess.Popen(
        [sys.executable, "-m", "tillflow", "demo", "--date", "2026-11-20", "--day-seconds", "900", "--fps", "0.05",
         "--keep-running"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    state = tmp_path / "state" / "demo"
    local = Settings(state_dir=state)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and demo.poll() is None:
            if (state / "stack.json").exists() and sum(watermarks(local, "pos.tickets").values()) > 0:
                break
            time.sleep(1)
        assert demo.poll() is None, demo.communicate()
        children = _demo_processes(state)  # worker, sink, simulator
        stack_pids = [part["pid"] for part in json.loads((state / "stack.json").read_text()).values()
                      if isinstance(part, dict) and "pid" in part]  # fmt: skip
        assert len(children) == 3 and len(stack_pids) == 2
        # The terminal signals the demo's process group; each process the demo started has a group of its own.
        assert all(os.getpgid(pid) != demo.pid for pid in children + stack_pids)
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, err = demo.communicate(timeout=180)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo.returncode == 0, err[-3000:] + out[-3000:]
    assert "error" not in err, err
    assert "demo summary" in out and "incidents injected" in out
    assert "interrupted: stopping the simulator, the worker and the sink" in err
    assert not (state / "stack.json").exists()
    assert _demo_processes(state) == []  # nothing left running
    assert not [pid for pid in stack_pids if Path(f"/proc/{pid}").exists()]
    assert {t: watermarks(stack, t) for t in before} == before  # production untouched
