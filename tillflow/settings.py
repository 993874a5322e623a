"""Configuration: a TOML or YAML file, overridden by ``TILLFLOW_*`` environment variables.

The file is ``TILLFLOW_CONFIG`` (or ``--config``), else ``tillflow.toml`` in the working directory if present.
Keys in the file are the setting names below (``kafka_bootstrap = "..."``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"config file {path}: cannot read: {exc.strerror}") from None
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config file {path}: expected a table of settings")
        unknown = sorted(set(data) - set(self.settings_cls.model_fields))
        if unknown:
            raise ValueError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
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
    topic_partitions: int = Field(6, ge=1, description="Partitions of the joined input topics.")
    topic_replication_factor: int = Field(1, ge=1)

    # Schema registry. Unset: the local stand-in started by `tillflow dev up`.
    registry_url: str | None = None
    registry_basic_auth: SecretStr | None = Field(None, description="user:password for the registry.")
    registry_ssl_ca_location: Path | None = None

    # ClickHouse. Unset: the embedded chDB engine under the state directory.
    clickhouse_url: str | None = None

    # Observability.
    metrics_port: int | None = Field(
        None, description="Serve Prometheus /metrics on this port (0: any free port); unset: not served."
    )
    metrics_host: str = "127.0.0.1"

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
        48.0, gt=0, description="Closed hours (with their dedupe ids) are kept this long for corrections."
    )
    streams_batch_size: int = Field(2000, ge=1, description="Events taken per agent batch.")
    streams_store: str = Field("memory://", description="Faust table store: memory:// or rocksdb://.")
    streams_alerts: dict[str, float] = Field(
        default_factory=dict, description="Alert thresholds overriding streams.alerts.AlertConfig defaults."
    )

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
