"""The Faust app: topics, tables and agents wired around the engine.

Built by :func:`create_app` from tillflow settings (broker, SASL/TLS, registry, partitions), so tests and
replays make apps with their own id and topic prefix. Processing is at-least-once (``exactly_once`` stalls
on the local broker); duplicates after a restart are absorbed by the dedupe ids kept in the hour state.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from schemas.catalogue import Catalogue
from schemas.serde import TopicSerde
from schemas.topics import ALERTS, CAMERA_COUNTS, CONVERSION_HOURLY, POS_TICKETS
from streams.engine import StreamConfig
from streams.processor import Processor
from streams.rules import AlertConfig
from streams.tables import Tables, define_tables
from streams.topics import TopicNames, Topics, define_topics
from streams.underreporting import UnderreportingConfig
from tillflow.kafka import endpoints, group_instance_id, registry_from_settings
from tillflow.settings import Settings


@dataclass
class StreamsApp:
    app: Any
    """The faust.App."""
    topics: Topics
    tables: Tables
    processor: Processor
    agents: dict[str, Any]


def stream_config(settings: Settings) -> StreamConfig:
    """Engine configuration from the ``streams_*`` settings."""
    unknown = set(settings.streams_alerts) - set(AlertConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"streams_alerts: unknown threshold(s) {', '.join(sorted(unknown))}")
    unknown = set(settings.streams_underreporting) - set(UnderreportingConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"streams_underreporting: unknown setting(s) {', '.join(sorted(unknown))}")
    return StreamConfig(
        lateness_ms=int(settings.streams_allowed_lateness_s * 1000),
        live_throttle_ms=int(settings.streams_live_throttle_s * 1000),
        idle_close_ms=int(settings.streams_idle_close_s * 1000),
        hour_retention_ms=int(settings.streams_hour_retention_h * 3_600_000),
        stream_skew_ms=int(settings.streams_stream_skew_s * 1000) or None,
        closed_retention_ms=int(settings.streams_closed_retention_d * 24 * 3_600_000),
        alerts=AlertConfig(**settings.streams_alerts),  # type: ignore[arg-type]
        underreporting=UnderreportingConfig(**settings.streams_underreporting),  # type: ignore[arg-type]
    )


def broker_credentials(settings: Settings) -> Any:
    """Faust credentials from the Kafka security settings (None for PLAINTEXT)."""
    import faust

    protocol = settings.kafka_security_protocol or "PLAINTEXT"
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_ca_location) if settings.kafka_ssl_ca_location else None
        )
        if settings.kafka_ssl_certificate_location:
            context.load_cert_chain(
                str(settings.kafka_ssl_certificate_location),
                str(settings.kafka_ssl_key_location) if settings.kafka_ssl_key_location else None,
            )
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=context,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return None


def create_app(
    settings: Settings,
    catalogue: Catalogue,
    *,
    app_id: str | None = None,
    topic_prefix: str = "",
    store: str | None = None,
    send: Any = None,
) -> StreamsApp:
    """A Faust app for ``catalogue`` on the configured (or local) broker and registry."""
    import faust

    from streams.transport import SCHEME, Stream, batch_topics, broker_urls

    ep = endpoints(settings)
    app_id = app_id or settings.streams_app_id
    partitions = settings.topic_partitions
    datadir = settings.state_dir.resolve() / "streams" / app_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=broker_urls(ep.bootstrap),
        # streams/transport.py: offsets committed only after their records' effects are flushed
        broker_consumer=broker_urls(ep.bootstrap, SCHEME),
        broker_producer=broker_urls(ep.bootstrap, SCHEME),
        Stream=Stream,
        broker_credentials=broker_credentials(settings),
        store=store or settings.streams_store,
        # Faust keeps table metadata (and RocksDB files) in its data dir; default is ./<app id>-data.
        datadir=str(datadir),
        processing_guarantee="at_least_once",
        topic_replication_factor=settings.topic_replication_factor,
        topic_partitions=partitions,
        web_enabled=False,
        web_host="127.0.0.1",
        value_serializer="raw",
        key_serializer="raw",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        # static membership where configured, and on the local stack (noida-db never evicts a dead member)
        consumer_group_instance_id=group_instance_id(app_id, settings.streams_instance_id, local=ep.local),
        # Table changelog values are a few kB each: batch and compress them, or the producer becomes the
        # bottleneck ("producer buffer full") long before the agents do.
        producer_max_batch_size=512 * 1024,
        producer_linger_ms=5,
        producer_compression_type="lz4",
        # Faust commits from the fetch loop every 10,000 acknowledged offsets (a batched worker: every few batches),
        # each commit waiting for the producer to flush first; on the 2.8 s interval alone (a commit task of its
        # own) fetching and processing go on meanwhile. A restart reads at most one interval again.
        broker_commit_every=1_000_000,
    )
    names = TopicNames.build(app_id, topic_prefix)
    topics = define_topics(app, names, partitions)
    tables = define_tables(app, partitions)
    registry = registry_from_settings(settings, ep.registry_url)
    serdes = {t: TopicSerde(registry, t) for t in (POS_TICKETS, CAMERA_COUNTS, CONVERSION_HOURLY, ALERTS)}
    # the engines write through Staged views: a batch's state reaches the tables once its outputs were delivered
    processor = Processor(
        catalogue,
        stream_config(settings),
        names,
        serdes,
        tables.staged(),
        partitions,
    )
    from streams.agents import define_agents, send_all

    if settings.streams_batched_transport:  # one event per fetched batch of one partition (streams/transport.py)
        batch_topics(app, [names.tickets, names.counts, names.ticks], settings.streams_batch_size)
        batch_topics(app, [names.peers], settings.streams_batch_size)

    agents = define_agents(
        app, processor, topics, tables, settings.streams_batch_size, settings.streams_tick_s, send or send_all
    )
    if settings.streams_storeops:
        from streams.storeops_stage import define_ops_agent

        agents |= define_ops_agent(
            app, catalogue, names, registry, partitions, settings.streams_batch_size, send or send_all
        )
    return StreamsApp(app, topics, tables, processor, agents)
