"""Kafka client configuration and topic management shared by every producer, stream and sink."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.topics import TOPICS, deadletter_topic
from tillflow.settings import Settings

# Java clients (Debezium, Kafka Connect, Faust/aiokafka) partition keys with murmur2; librdkafka defaults to
# crc32. Joined topics must agree, so every tillflow producer uses the Java-compatible partitioner.
PARTITIONER = "murmur2_random"


class StackNotRunning(RuntimeError):
    """No Kafka is configured and the local stack is not running."""


@dataclass(frozen=True)
class Endpoints:
    bootstrap: str
    registry_url: str
    local: bool


def stack_file(settings: Settings) -> Path:
    return settings.state_dir / "stack.json"


def endpoints(settings: Settings) -> Endpoints:
    """Configured endpoints, else those of the local stack started by `tillflow dev up`."""
    if settings.kafka_bootstrap:
        if not settings.registry_url:
            raise StackNotRunning("TILLFLOW_KAFKA_BOOTSTRAP is set but TILLFLOW_REGISTRY_URL is not")
        return Endpoints(settings.kafka_bootstrap, settings.registry_url, local=False)
    path = stack_file(settings)
    try:
        stack = json.loads(path.read_text())
    except (OSError, ValueError):
        raise StackNotRunning(
            f"no Kafka configured and no local stack at {path}: run `tillflow dev up` "
            "or set TILLFLOW_KAFKA_BOOTSTRAP and TILLFLOW_REGISTRY_URL"
        ) from None
    return Endpoints(stack["kafka"]["bootstrap"], settings.registry_url or stack["registry"]["url"], local=True)


def client_config(settings: Settings, bootstrap: str | None = None) -> dict[str, Any]:
    """librdkafka properties common to producers, consumers and admin clients (security included)."""
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap or endpoints(settings).bootstrap}
    if settings.kafka_security_protocol:
        conf["security.protocol"] = settings.kafka_security_protocol
    if settings.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        conf["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password:
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    for key, path in (
        ("ssl.ca.location", settings.kafka_ssl_ca_location),
        ("ssl.certificate.location", settings.kafka_ssl_certificate_location),
        ("ssl.key.location", settings.kafka_ssl_key_location),
    ):
        if path:
            conf[key] = str(path)
    conf.update(settings.kafka_client_config)
    return conf


def producer_config(settings: Settings, bootstrap: str | None = None, **extra: Any) -> dict[str, Any]:
    """Idempotent, acks=all, Java-compatible partitioning: what was acknowledged is kept, in order."""
    conf = client_config(settings, bootstrap)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": PARTITIONER,
            "linger.ms": 20,
            "compression.type": "lz4",
        }
    )
    conf.update(extra)
    return conf


def consumer_config(settings: Settings, group_id: str, bootstrap: str | None = None, **extra: Any) -> dict[str, Any]:
    """Manual commits after processing (at-least-once), starting from the earliest offset."""
    conf = client_config(settings, bootstrap)
    conf.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    conf.update(extra)
    return conf


def group_member_config(
    settings: Settings, group_id: str, bootstrap: str | None = None, **extra: Any
) -> dict[str, Any]:  # fmt: skip
    """:func:`consumer_config` for a long-running member of ``group_id`` (a sink, the normalizer).

    Static membership (``group.instance.id``) where configured (``kafka_group_instance_id``) and on the local
    stack: its broker (noida-db) never evicts a dead member, so a member killed with kill -9 and restarted with
    a new member id waits for its predecessor forever; with the same instance id it replaces it at once. A
    static member does not leave the group when it closes either: on a configured Kafka the setting is opt-in,
    since a stopped static member keeps its partitions until ``session.timeout.ms``.
    """
    conf = consumer_config(settings, group_id, bootstrap, **extra)
    instance = settings.kafka_group_instance_id
    if not instance and not settings.kafka_bootstrap:
        instance = f"{group_id}@{socket.gethostname()}"
    if instance:
        conf["group.instance.id"] = instance
    return conf


def wanted_topics(settings: Settings) -> dict[str, int]:
    """Topic name to partition count: joined topics and their dead-letter topics share one count."""
    wanted: dict[str, int] = {}
    for spec in TOPICS.values():
        wanted[spec.name] = settings.topic_partitions
        wanted[deadletter_topic(spec.name)] = 1 if not spec.joined else settings.topic_partitions
    return wanted


def ensure_topics(admin: AdminClient, wanted: dict[str, int], replication_factor: int) -> dict[str, str]:
    """Create missing topics; never change existing ones. Returns topic -> 'created' | 'exists'.

    An existing joined topic with another partition count is an error: adding partitions would move keys
    and break the co-partitioning of tickets and camera counts.
    """
    existing = admin.list_topics(timeout=10).topics
    result: dict[str, str] = {}
    mismatched = [
        f"{name} has {len(existing[name].partitions)} partitions, expected {count}"
        for name, count in wanted.items()
        if name in existing and name in TOPICS and TOPICS[name].joined and len(existing[name].partitions) != count
    ]
    if mismatched:
        raise RuntimeError("joined topics must share one partition count: " + "; ".join(mismatched))
    missing = [NewTopic(name, count, replication_factor) for name, count in wanted.items() if name not in existing]
    for name in wanted:
        result[name] = "exists"
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=10).items():
            try:
                future.result()
                result[name] = "created"
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
    return result
