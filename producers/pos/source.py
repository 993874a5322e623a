"""A POS source configuration file (YAML or TOML): vendor, store mapping, credentials, sync options.

Credentials are never in the file itself: each secret is read from an environment variable (``*_env``) or a
file (``*_file``, e.g. a systemd credential or a Kubernetes secret mount).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tillflow.documents import load_document
from tillflow.errors import ConfigError

Vendor = Literal["square", "shopify", "lightspeed", "clover"]


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``hourly``, ``daily`` as a timedelta."""
    named = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
    if text in named:
        return named[text]
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match:
        raise ConfigError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d, hourly, daily)")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


class Secret(BaseModel):
    """Where a secret lives: an environment variable or a file. Its value is never printed."""

    model_config = ConfigDict(extra="forbid")
    env: str | None = None
    file: Path | None = None

    def read(self, what: str) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"{what}: environment variable {self.env} is not set")
            return value.strip()
        if self.file:
            try:
                return self.file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{what}: cannot read {self.file}: {exc.strerror}") from None
        raise ConfigError(f"{what}: give env or file")


class Auth(BaseModel):
    """``api_key``: a static token. ``oauth2``: an access token refreshed with a rotating refresh token."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["api_key", "oauth2"] = "api_key"
    token: Secret | None = None
    """api_key: the token (Square access token, Shopify Admin API token, Lightspeed personal token, Clover)."""
    client_id: str | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    """oauth2: the first refresh token; rotated tokens are then kept in the token file of the state dir."""
    token_url: str | None = None
    """oauth2: override the vendor's token endpoint."""


class WebhookConfig(BaseModel):
    """Push notifications for ``tillflow webhooks serve`` (the poller stays the safety net)."""

    model_config = ConfigDict(extra="forbid")
    secret: Secret
    """Square: the subscription's signature key; Shopify: the app's client secret; Clover: the Clover Auth Code
    (X-Clover-Auth); Lightspeed X-Series: the app's client secret."""
    notification_url: str | None = None
    """Square: the notification URL exactly as configured in Square (it is part of what Square signs)."""
    tolerance: timedelta | None = None
    """How old a notification may be and still be accepted (default: the vendor's retry window)."""

    @field_validator("tolerance", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Unique source name; the ticket `source`.")
    vendor: Vendor
    base_url: str | None = Field(None, description="Override the vendor API's base URL.")
    stores: dict[str, str] = Field(min_length=1, description="Vendor location/outlet/merchant id -> store_id.")
    tenant_id: str | None = None
    currency: str | None = Field(None, description="Currency of the sales (required for Lightspeed).")
    categories: dict[str, str] = Field(default_factory=dict)
    payment_types: dict[str, str] = Field(default_factory=dict)
    auth: Auth
    overlap: timedelta = Field(timedelta(minutes=10), description="Re-read this much before the checkpoint.")
    page_size: int = Field(100, ge=1, le=1000)
    max_attempts: int = Field(6, ge=1, description="Tries per request before the sync stops.")
    backoff_base: float = Field(1.0, ge=0, description="Seconds; doubles per retry, with full jitter.")
    backoff_max: float = Field(60.0, ge=0, description="Seconds; the longest backoff between retries.")
    retry_after_max: float = Field(
        900.0, ge=0, description="Seconds; the longest 429 Retry-After honoured (a longer one is cut to it)."
    )
    timeout: float = Field(30.0, gt=0, description="Seconds per HTTP request.")
    # vendor specifics
    shop: str | None = Field(None, description="Shopify: the shop's myshopify.com subdomain.")
    api_version: str = Field(
        default_factory=lambda: _shopify_api_version(), description="Shopify GraphQL Admin API version (YYYY-MM)."
    )
    source_names: list[str] = Field(default_factory=lambda: ["pos"], description="Shopify source_name kept.")
    domain_prefix: str | None = Field(None, description="Lightspeed: the retailer's domain prefix.")
    webhook: WebhookConfig | None = Field(None, description="Push notifications (`tillflow webhooks serve`).")

    @field_validator("overlap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"currency must be an ISO 4217 code such as EUR, got {value!r}")
        return value


def _shopify_api_version() -> str:
    from producers.pos.shopify_api import API_VERSION

    return API_VERSION


def load_source(path: Path) -> SourceConfig:
    """Read and validate a source file."""
    return load_document(path, SourceConfig, expected="the source's settings")
