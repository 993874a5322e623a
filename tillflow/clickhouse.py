"""One way to reach ClickHouse: clickhouse-connect, over HTTP(S) to a server or in-process through chDB.

``TILLFLOW_CLICKHOUSE_URL`` (``https://user:password@host:8443/database``) selects a server; unset, the
embedded chDB engine keeps its data under ``<state_dir>/clickhouse`` (one process per data directory). A
password in the URL is percent-decoded; ``TILLFLOW_CLICKHOUSE_PASSWORD``, taken as is, overrides it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tillflow.errors import ConfigError
from tillflow.extras import missing_extra
from tillflow.settings import Settings


class ClickHouseConfigError(ConfigError):
    """TILLFLOW_CLICKHOUSE_URL cannot be used."""


def clickhouse_dsn(settings: Settings) -> str:
    """The clickhouse-connect DSN: the configured http(s) URL, else ``chdb://<abs state_dir>/clickhouse``."""
    if settings.clickhouse_url:
        scheme = urlsplit(settings.clickhouse_url).scheme
        if scheme not in ("http", "https", "chdb"):
            raise ClickHouseConfigError(
                f"TILLFLOW_CLICKHOUSE_URL must start with http://, https:// or chdb://, got {scheme or 'no'} scheme"
            )
        return settings.clickhouse_url
    return f"chdb://{(settings.state_dir / 'clickhouse').resolve()}"


def database_name(settings: Settings) -> str:
    """The database in the URL's path if there is one, else ``clickhouse_database``."""
    if settings.clickhouse_url and urlsplit(settings.clickhouse_url).scheme in ("http", "https"):
        path = urlsplit(settings.clickhouse_url).path.strip("/")
        if path:
            return path
    return settings.clickhouse_database


def redacted(dsn: str) -> str:
    """The DSN with its password replaced, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(settings: Settings, database: str | None = "", create: bool = False) -> Any:
    """A clickhouse-connect client; ``database`` '' means tillflow's database, None the server default.

    ``create`` creates the database first if it does not exist.
    """
    import clickhouse_connect

    if create:
        db = database_name(settings) if database == "" else database
        if db is not None:
            server = connect(settings, database=None)
            try:
                server.command(f"CREATE DATABASE IF NOT EXISTS `{db}`")
            finally:
                server.close()

    dsn = clickhouse_dsn(settings)
    if dsn.startswith("chdb://"):
        problem = missing_extra("ClickHouse with no server configured (the embedded chDB)", "chdb")
        if problem:
            raise ClickHouseConfigError(problem)
        (settings.state_dir / "clickhouse").mkdir(parents=True, exist_ok=True)
    db = database_name(settings) if database == "" else database
    parts = urlsplit(dsn)
    if parts.scheme in ("http", "https"):  # the database is passed on its own, not in the path
        dsn = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    kwargs: dict[str, Any] = {"dsn": dsn}
    if settings.clickhouse_password is not None and parts.scheme in ("http", "https"):
        kwargs["password"] = settings.clickhouse_password.get_secret_value()
    if db is not None:
        kwargs["database"] = db
    return clickhouse_connect.get_client(**kwargs)
