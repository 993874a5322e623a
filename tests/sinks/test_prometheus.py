"""deploy/prometheus: promtool checks and rule unit tests, and Debian's Prometheus scraping a running
`tillflow sink clickhouse` process and a running `tillflow worker`, answering queries about them through
its HTTP API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from schemas.topics import POS_TICKETS
from tests.sinks.kafka_helpers import produce
from tests.support.records import CATALOGUE, ticket
from tillflow.devstack import free_port
from tillflow.kafka import endpoints
from tillflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="Debian package prometheus not installed")


def promtool(*args: str) -> str:
    done = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@needs_promtool
def test_promtool_accepts_config_and_rules() -> None:
    assert "SUCCESS" in promtool("check", "config", str(PROM / "prometheus.yml"))
    files = sorted((PROM / "rules").glob("*.yml"))
    report = promtool("check", "rules", *map(str, files))
    for path in files:  # promtool reports each file's count: compare it with the rules the file ships
        shipped = sum(len(group["rules"]) for group in yaml.safe_load(path.read_text())["groups"])
        assert f"{shipped} rules found" in report, (path.name, report)


@needs_promtool
def test_alert_rules_fire_on_the_scenarios() -> None:
    assert "SUCCESS" in promtool("test", "rules", str(PROM / "tests" / "tillflow.test.yml"))


def wait_until(check: Any, timeout: float, what: str, procs: list[subprocess.Popen[bytes]]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode} while waiting for {what}"
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def tillflow_env(stack: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a tillflow process on the test stack, free of the developer's TILLFLOW_* settings."""
    ep = endpoints(stack)
    (tmp_path / "empty.toml").write_text("")
    return {k: v for k, v in os.environ.items() if not k.startswith("TILLFLOW_")} | {
        "TILLFLOW_CONFIG": str(tmp_path / "empty.toml"),
        "TILLFLOW_KAFKA_BOOTSTRAP": ep.bootstrap,
        "TILLFLOW_REGISTRY_URL": ep.registry_url,
        "TILLFLOW_STATE_DIR": str(tmp_path / "state"),
        "TILLFLOW_CATALOGUE": str(CATALOGUE),
        **extra,
    }


def start_prometheus(tmp_path: Path, job_name: str, target: int, component: str, rules: bool) -> tuple[Any, str]:
    """Debian's Prometheus with the shipped job ``job_name`` pointed at 127.0.0.1:``target``; returns (proc, api)."""
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config.pop("alerting")  # no Alertmanager here
    if rules:
        config["rule_files"] = [str(PROM / "rules" / "*.yml")]
    else:
        config.pop("rule_files", None)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == job_name)
    job["static_configs"] = [{"targets": [f"127.0.0.1:{target}"], "labels": {"component": component}}]
    config["scrape_configs"] = [job]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom_port = free_port()
    prom = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"),
    )  # fmt: skip
    return prom, f"http://127.0.0.1:{prom_port}/api/v1"


@pytest.fixture
def sink_process(stack: Settings, tmp_path: Path, unique: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = tillflow_env(
        stack, tmp_path, TILLFLOW_METRICS_PORT=str(port), TILLFLOW_SINK_GROUP_ID=f"prom-{unique}",
        TILLFLOW_SINK_BATCH_SECONDS="0.5",
    )  # fmt: skip
    log = (tmp_path / "sink.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tillflow", "sink", "clickhouse"], env=env, cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    yield proc, port
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian package prometheus not installed")
def test_prometheus_scrapes_a_running_sink(stack: Settings, sink_process: Any, tmp_path: Path) -> None:
    sink, metrics_port = sink_process
    prom, api = start_prometheus(tmp_path, "tillflow-sinks", metrics_port, "sink-clickhouse", rules=True)
    try:
        produce(stack, POS_TICKETS, POS_TICKETS, [ticket(9000 + i) for i in range(5)])

        def written() -> float:
            query = 'sum(tillflow_sink_records_total{job="tillflow-sinks", topic="pos.tickets", outcome="written"})'
            result = requests.get(f"{api}/query", params={"query": query}, timeout=5).json()["data"]["result"]
            return float(result[0]["value"][1]) if result else 0.0

        assert wait_until(lambda: written() >= 5, 90, "the ticket counter in Prometheus", [sink, prom])

        def series(query: str) -> list[dict[str, Any]]:
            answer = requests.get(f"{api}/query", params={"query": query}, timeout=5).json()
            result: list[dict[str, Any]] = answer["data"]["result"]
            return result

        lag = wait_until(lambda: series('tillflow_sink_consumer_lag{topic="pos.tickets"}'), 30, "lag", [sink, prom])
        assert {s["metric"]["partition"] for s in lag} == {"0", "1", "2"}
        assert series('sum(tillflow_sink_flush_seconds_count{sink="clickhouse"}) > 0')
        assert series('sum(tillflow_sink_batch_records_sum{sink="clickhouse"}) >= 5')
        up = requests.get(f"{api}/query", params={"query": 'up{job="tillflow-sinks"}'}, timeout=5).json()
        assert up["data"]["result"][0]["value"][1] == "1"
        assert up["data"]["result"][0]["metric"]["component"] == "sink-clickhouse"
        groups = requests.get(f"{api}/rules", timeout=5).json()["data"]["groups"]
        shipped = [yaml.safe_load(f.read_text()) for f in sorted((PROM / "rules").glob("*.yml"))]
        assert sum(len(g["rules"]) for g in groups) == sum(len(g["rules"]) for d in shipped for g in d["groups"])
    finally:
        prom.terminate()
        prom.wait(timeout=30)
    sink.send_signal(signal.SIGTERM)
    assert sink.wait(timeout=30) == 0


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian package prometheus not installed")
def test_prometheus_scrapes_a_running_worker(stack: Settings, tmp_path: Path, unique: str) -> None:
    """Debian's Prometheus scrapes `tillflow worker` with the shipped job and reads back its event counter, the
    per-partition consumer lag, the batch latency histogram, a dead letter and the hours it closed."""
    metrics_port = free_port()
    env = tillflow_env(stack, tmp_path, TILLFLOW_TOPIC_PARTITIONS="3", TILLFLOW_STREAMS_IDLE_CLOSE_S="2")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tillflow", "worker", "--metrics-port", str(metrics_port), "--app-id", f"prom-{unique}"],
        env=env, cwd=ROOT, stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    prom, api = start_prometheus(tmp_path, "tillflow-workers", metrics_port, "worker", rules=False)
    try:
        # An hour well past (closed by the idle timer below), recent enough for any retention; and one record
        # that is not Avro, which the worker dead-letters (with bytes headers) and goes on.
        at = datetime.now(UTC).replace(minute=10, second=0, microsecond=0) - timedelta(hours=3)
        produce(stack, POS_TICKETS, POS_TICKETS, [ticket(70000 + i, store="wg-grocer", at=at) for i in range(5)])
        produce(stack, POS_TICKETS, POS_TICKETS, [b"not avro"])

        def processed() -> float:
            query = 'sum(tillflow_streams_events_total{job="tillflow-workers", topic="pos.tickets"})'
            result = requests.get(f"{api}/query", params={"query": query}, timeout=5).json()["data"]["result"]
            return float(result[0]["value"][1]) if result else 0.0

        assert wait_until(lambda: processed() >= 5, 120, "the worker's event counter in Prometheus", [worker, prom])
        up = requests.get(f"{api}/query", params={"query": 'up{job="tillflow-workers"}'}, timeout=5).json()
        assert up["data"]["result"][0]["value"][1] == "1"

        def series(query: str) -> list[dict[str, Any]]:
            result: list[dict[str, Any]] = requests.get(f"{api}/query", params={"query": query}, timeout=5).json()[
                "data"
            ]["result"]
            return result

        # The worker owns all three partitions of each input; it has read everything produced, so no lag.
        lag = wait_until(
            lambda: series('tillflow_streams_consumer_lag{job="tillflow-workers", topic="pos.tickets"}'),
            60, "the worker's consumer lag", [worker, prom],
        )  # fmt: skip
        assert {s["metric"]["partition"] for s in lag} == {"0", "1", "2"}
        assert wait_until(
            lambda: series('sum(tillflow_streams_consumer_lag{topic="pos.tickets"}) == 0'), 60, "lag 0", [worker, prom]
        )
        assert series('sum(tillflow_streams_batch_seconds_count{job="tillflow-workers"}) > 0')
        assert wait_until(
            lambda: series('sum(tillflow_streams_dead_letters_total{job="tillflow-workers"}) >= 1'),
            60, "a dead letter", [worker, prom],
        )  # fmt: skip
        # The tickets' hour is past: the quiet partition closes it after 2 s of idle time.
        assert wait_until(
            lambda: series('sum(tillflow_streams_hours_closed_total{job="tillflow-workers"}) >= 1'),
            60, "an hour closed", [worker, prom],
        )  # fmt: skip
    finally:
        prom.terminate()
        prom.wait(timeout=30)
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
