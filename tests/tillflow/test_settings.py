import os
from pathlib import Path

import pytest

from tillflow.kafka import client_config, consumer_config, producer_config
from tillflow.settings import Settings, load_settings


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "tillflow.toml"
    cfg.write_text('kafka_bootstrap = "file:9092"\nregistry_url = "http://file"\ntopic_partitions = 12\n')
    monkeypatch.setenv("TILLFLOW_CONFIG", str(cfg))
    monkeypatch.setenv("TILLFLOW_TOPIC_PARTITIONS", "24")
    s = Settings()
    assert s.kafka_bootstrap == "file:9092"  # from the file
    assert s.topic_partitions == 24  # the environment wins over the file
    assert load_settings(topic_partitions=3).topic_partitions == 3  # explicit beats both


def test_yaml_config_and_unknown_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg = tmp_path / "tillflow.yaml"
    cfg.write_text("kafka_bootstrap: y:1\nregistry_url: http://y\n")
    monkeypatch.setenv("TILLFLOW_CONFIG", str(cfg))
    assert Settings().kafka_bootstrap == "y:1"
    cfg.write_text("kafka_bootstrapp: y:1\n")
    with pytest.raises(ValueError, match="unknown setting"):
        Settings()


def test_security_settings_pass_through(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TILLFLOW_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TILLFLOW_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TILLFLOW_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("TILLFLOW_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("TILLFLOW_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem")
    monkeypatch.setenv("TILLFLOW_KAFKA_CLIENT_CONFIG", '{"client.id": "till"}')
    s = Settings()
    assert "s3cret" not in repr(s)  # secrets never printed
    conf = client_config(s, "b:9093")
    assert conf == {
        "bootstrap.servers": "b:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "s3cret",
        "ssl.ca.location": "/etc/ca.pem",
        "client.id": "till",
    }
    prod = producer_config(s, "b:9093")
    assert prod["partitioner"] == "murmur2_random" and prod["enable.idempotence"] is True
    cons = consumer_config(s, "g", "b:9093")
    assert cons["enable.auto.commit"] is False and cons["group.id"] == "g"


def test_endpoints_without_stack_say_what_to_do(tmp_path: Path):
    from tillflow.kafka import StackNotRunning, endpoints

    with pytest.raises(StackNotRunning, match="tillflow dev up"):
        endpoints(Settings(state_dir=tmp_path))
    with pytest.raises(StackNotRunning, match="TILLFLOW_REGISTRY_URL"):
        endpoints(Settings(state_dir=tmp_path, kafka_bootstrap="b:1"))
    assert os.environ.get("TILLFLOW_KAFKA_BOOTSTRAP") is None
