"""deploy/docker-compose.yml and deploy/Dockerfile, checked structurally (Docker does not run here): the
compose file parses, every tillflow service runs a command the CLI has (with options it accepts), every
TILLFLOW_* variable it or the image sets is a real setting, mounted files exist, and Prometheus scrapes each
tillflow service on the port it serves /metrics on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from sinks.alerts.routing import load_routes, route
from tests.support.records import alert
from tillflow.cli import app
from tillflow.settings import CONFIG_ENV, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# Commands of other areas (streams: `worker`; CDC: `normalize`) that the compose file runs. They are checked
# like the others once present; while a branch lacks them they are reported by name, not silently passed.
OTHER_AREAS = {"worker", "normalize"}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def tillflow_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose()["services"].items() if svc.get("image") == "tillflow:latest"}


def is_group(node: Any) -> bool:
    return hasattr(node, "commands") and hasattr(node, "get_command")


def resolve(command: list[str]) -> Any:
    """Walk the CLI like click does; parse the remaining arguments with the command's own options."""
    node: Any = typer.main.get_command(app)
    args = list(command)
    while is_group(node) and args and not args[0].startswith("-"):
        name = args.pop(0)
        sub = node.get_command(node.context_class(node), name)
        if sub is None:
            raise LookupError(name)
        node = sub
    assert not is_group(node), f"{command} names a group, not a command"
    node.make_context(node.name or "", args, resilient_parsing=False)
    return node


def test_compose_services() -> None:
    services = compose()["services"]
    for needed in ("kafka", "schema-registry", "connect", "clickhouse", "grafana", "prometheus"):
        assert needed in services
    assert "KRaft" in (DEPLOY / "docker-compose.yml").read_text() or "process_roles" in str(services["kafka"]).lower()
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"].startswith("grafana-clickhouse-datasource@")
    commands = {name: svc["command"] for name, svc in tillflow_services().items()}
    assert sum(1 for c in commands.values() if c == ["worker"]) == 2
    assert ["sink", "clickhouse"] in commands.values() and ["sink", "alerts"] in commands.values()
    assert ["normalize"] in commands.values()


def test_every_service_command_exists_in_the_cli() -> None:
    missing = []
    for name, svc in tillflow_services().items():
        try:
            resolve(svc["command"])
        except LookupError as exc:
            assert str(exc) in OTHER_AREAS, f"service {name}: `tillflow {' '.join(svc['command'])}` is not a command"
            missing.append(str(exc))
    top = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert set(missing) == OTHER_AREAS - top  # what is missing is exactly the other areas' absent commands


def test_every_tillflow_variable_is_a_setting() -> None:
    fields = {f"TILLFLOW_{name.upper()}" for name in Settings.model_fields} | {CONFIG_ENV}
    seen = set()
    for name, svc in compose()["services"].items():
        for key in svc.get("environment", {}):
            if key.startswith("TILLFLOW_") and name in tillflow_services():
                assert key in fields, f"service {name} sets {key}, which is not a setting"
                seen.add(key)
    for key in re.findall(r"\b(TILLFLOW_[A-Z0-9_]+)=", (DEPLOY / "Dockerfile").read_text()):
        assert key in fields, f"Dockerfile sets {key}, which is not a setting"
        seen.add(key)
    assert {"TILLFLOW_KAFKA_BOOTSTRAP", "TILLFLOW_CLICKHOUSE_URL", "TILLFLOW_ALERTS_ROUTES"} <= seen


def test_mounted_files_exist_and_prometheus_targets_match() -> None:
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"service {name} mounts missing {source}"
    services = compose()["services"]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for job in prom["scrape_configs"]:
        if not job["job_name"].startswith("tillflow-"):
            continue
        for sd in job.get("file_sd_configs", []):  # processes outside the stack: their target lists ship empty
            for listed in sd["files"]:
                assert yaml.safe_load((DEPLOY / "prometheus" / listed).read_text()) == []
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.split(":")
                assert host in services, f"Prometheus scrapes {host}, which is not a service"
                assert services[host]["environment"]["TILLFLOW_METRICS_PORT"] == port
                assert services[host]["environment"]["TILLFLOW_METRICS_HOST"] == "0.0.0.0"


def test_prometheus_alerts_reach_alertmanager() -> None:
    """Prometheus sends to the compose file's Alertmanager; its receivers read the secrets compose mounts.
    (`amtool check-config deploy/alertmanager/alertmanager.yml` runs where amtool is installed.)"""
    data = compose()
    services = data["services"]
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (target,) = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in services and f"{port}:{port}" in services[host]["ports"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services[host]["volumes"] if v.startswith(".")}
    config_path = next(a.split("=", 1)[1] for a in services[host]["command"] if a.startswith("--config.file="))
    am = yaml.safe_load((DEPLOY / mounts[config_path]).read_text())
    receivers = {r["name"]: r for r in am["receivers"]}
    used = {am["route"]["receiver"]} | {r["receiver"] for r in am["route"].get("routes", [])}
    assert used <= set(receivers)
    files = [c[k] for r in receivers.values() for cs in r.values() if isinstance(cs, list) for c in cs
             for k in c if k.endswith("_file")]  # fmt: skip
    assert files and all(f.startswith("/run/secrets/") for f in files)
    for f in files:
        name = f.removeprefix("/run/secrets/")
        assert name in services[host]["secrets"], f"Alertmanager reads {f}, which compose does not mount"
        assert data["secrets"][name]["environment"] in (DEPLOY / ".env.example").read_text()
    severities = {r["labels"]["severity"] for f in (DEPLOY / "prometheus" / "rules").glob("*.yml")
                  for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]}  # fmt: skip
    assert severities <= {"warning", "critical"}  # what the Alertmanager routes match


def test_dockerfile_copies_what_the_image_needs() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for package in ("tillflow", "schemas", "producers", "streams", "sinks"):
        assert f"COPY {package} ./{package}" in text
    assert "COPY deploy/clickhouse /etc/tillflow/clickhouse" in text
    assert 'ENTRYPOINT ["tillflow"]' in text


def test_shipped_routes_load_with_the_shipped_env_example() -> None:
    """deploy/alerts/routes.example.yaml as the compose file mounts it, with deploy/.env.example's values: every
    channel is disabled (the example leaves the webhooks empty), the sink starts and says so."""
    service = compose()["services"]["sink-alerts"]
    mounted = next(v.split(":")[0] for v in service["volumes"] if v.endswith(":/etc/tillflow/alert-routes.yaml:ro"))
    example = dict(
        line.split("=", 1) for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )  # fmt: skip
    env = {}
    for key, value in service["environment"].items():
        if isinstance(value, str) and value.startswith("${") and not key.startswith("TILLFLOW_"):
            name = value[2:].split(":-")[0].rstrip("}")
            env[key] = example[name]  # KEY: ${NAME:-} takes NAME from .env
    assert env and all(v == "" for v in env.values())
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        config = load_routes(DEPLOY / mounted)
    assert config.channels == {} and set(config.disabled) == {"oncall", "retail-ops", "westgate-centre-management",
                                                               "audit"}  # fmt: skip
    notes = config.warnings()
    assert "no alert channel is enabled: alerts are consumed and counted as unrouted, not delivered" in notes
    assert route(alert(1), config) == []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x")
        config = load_routes(DEPLOY / mounted)
    assert set(config.channels) == {"retail-ops"}
    assert route(alert(1, kind="FEED_SILENT"), config) == ["retail-ops"]
