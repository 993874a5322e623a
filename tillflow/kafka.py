"""Kafka client configuration and topic management shared by every producer, stream and sink."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from schemas.models import Record
from schemas.serde import TopicSerde, registry_client
from schemas.topics import TOPICS, deadletter_topic
from tillflow.errors import ConfigError, UnavailableError
from tillflow.settings import Settings

# Java clients (Debezium, Kafka Connect, Faust/aiokafka) partition keys with murmur2; librdkafka defaults to
# crc32. Joined topics must agree, so every tillflow producer uses the Java-compatible partitioner.
PARTITIONER = "murmur2_random"


class StackNotRunning(UnavailableError):
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


def registry_from_settings(settings: Settings, url: str | None = None) -> SchemaRegistryClient:
    """The schema registry client of ``settings``: its URL (``url``, else the configured or local stack's),
    basic auth and CA. The one place a registry client is built from the settings."""
    auth = settings.registry_basic_auth.get_secret_value() if settings.registry_basic_auth else None
    ca = str(settings.registry_ssl_ca_location) if settings.registry_ssl_ca_location else None
    return registry_client(url or endpoints(settings).registry_url, auth, ca)


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


def group_instance_id(group_id: str, configured: str | None, *, local: bool) -> str | None:
    """The static member id (``group.instance.id``) of a long-running group member: the configured one, else on
    the local stack ``<group>@<host>`` (its broker never evicts a dead member, see :func:`group_member_config`),
    else none (dynamic membership)."""
    if configured:
        return configured
    return f"{group_id}@{socket.gethostname()}" if local else None


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
    instance = group_instance_id(group_id, settings.kafka_group_instance_id, local=not settings.kafka_bootstrap)
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
        raise ConfigError("joined topics must share one partition count: " + "; ".join(mismatched))
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


class Located(Protocol):
    """Where a consumed record was: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int


SKIPPABLE_COMMIT_ERRORS = frozenset(
    {
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TRANSPORT,
        KafkaError._TIMED_OUT,
        KafkaError._WAIT_COORD,
        KafkaError._NO_OFFSET,
    }
)
"""Commit failures after which a consumer goes on: the group changed under it (a rebalance, or a restarted
broker that forgot the group's generation) or the coordinator is away. What the batch did is already written
idempotently, so not committing it only means reading it again. A fenced static member (another process took
its instance id) is not among them."""


def commit_can_be_skipped(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    return error is not None and error.code() in SKIPPABLE_COMMIT_ERRORS


def commit_written(consumer: Consumer, offsets: Sequence[tuple[str, int, int]], what: str) -> bool:
    """Commit ``(topic, partition, next offset)`` of a batch whose effects are written idempotently.

    Returns False (and logs) when the commit was refused for a reason in :data:`SKIPPABLE_COMMIT_ERRORS`: the
    records will be read again and leave the same state. Any other refusal raises.
    """
    if not offsets:
        return True
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for t, p, o in offsets], asynchronous=False)
    except KafkaException as exc:
        if not commit_can_be_skipped(exc):
            raise
        logging.getLogger(__name__).warning(
            "could not commit %s (%s); its records will be read again (same result)", what, exc
        )
        return False
    return True


def commit_offsets(items: Sequence[Located]) -> list[tuple[str, int, int]]:
    """(topic, partition, next offset) per partition: one past the highest offset consumed."""
    top: dict[tuple[str, int], int] = {}
    for item in items:
        key = (item.topic, item.partition)
        top[key] = max(top.get(key, -1), item.offset)
    return [(t, p, o + 1) for (t, p), o in sorted(top.items())]


def decoders(settings: Settings, topics: dict[str, str]) -> dict[str, Callable[[bytes | None], Record]]:
    """Model decoder per consumed topic; ``topics`` maps consumed name to tillflow topic (whose schema applies)."""
    registry = registry_from_settings(settings)
    return {name: TopicSerde(registry, logical, auto_register=False).decode_model for name, logical in topics.items()}
