"""Channels and routing rules from a YAML file, and a per-channel rate limiter: pure logic.

    channels:
      oncall:   {type: pagerduty, routing_key: "${PD_ROUTING_KEY}"}
      ops:      {type: slack, url: "${SLACK_WEBHOOK_URL}", rate_limit_per_minute: 20}
      westgate: {type: teams, url: "${TEAMS_WEBHOOK_URL}"}
      audit:    {type: webhook, url: "https://audit.example.com/tillflow", secret: "${AUDIT_SECRET}"}
    routes:
      - {match: {severity: [CRITICAL]}, channels: [oncall, ops]}
      - {match: {mall: [westgate]}, channels: [westgate]}
      - {match: {}, channels: [audit]}        # an empty match takes every alert

An alert goes to the union of the channels of every route it matches (each channel once). Within a match,
the listed values of one key are alternatives and different keys must all hold; kind, severity and state
must be values of AlertKind, Severity and AlertState. ``${NAME}`` is replaced by the environment variable
NAME, so secrets stay out of the file; an unset NAME is an error, while a NAME set to the empty string
disables the channels using it (with a warning), so one routes file serves deployments that fill in only
some of the channels.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from schemas.catalogue import Catalogue
from schemas.models import Alert, AlertKind, AlertState, Severity
from tillflow.documents import validation_lines
from tillflow.errors import ConfigError

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RoutingError(ConfigError):
    """The routing file cannot be used; the message names the file, key and reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Channel(_Strict):
    type: Literal["slack", "teams", "pagerduty", "webhook"]
    url: str | None = None
    routing_key: str | None = None
    secret: str | None = None
    rate_limit_per_minute: float = Field(30, gt=0)
    burst: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> Channel:
        if self.type == "pagerduty" and not self.routing_key:
            raise ValueError("a pagerduty channel needs routing_key")
        if self.type != "pagerduty" and not self.url:
            raise ValueError(f"a {self.type} channel needs url")
        if self.type == "webhook" and not self.secret:
            raise ValueError("a webhook channel needs secret (requests are signed)")
        return self

    @property
    def endpoint(self) -> str:
        return self.url or PAGERDUTY_URL


_ENUMS: dict[str, tuple[str, ...]] = {
    "kind": tuple(AlertKind),
    "severity": tuple(Severity),
    "state": tuple(AlertState),
}


class Match(_Strict):
    kind: list[str] | None = None
    severity: list[str] | None = None
    mall: list[str] | None = None
    store: list[str] | None = None
    state: list[str] | None = None

    @field_validator("kind", "severity", "state")
    @classmethod
    def _known(cls, values: list[str] | None, info: ValidationInfo) -> list[str] | None:
        known = _ENUMS[str(info.field_name)]
        for value in values or ():
            if value not in known:
                raise ValueError(f"unknown {info.field_name} {value!r}; one of {', '.join(known)}")
        return values

    def matches(self, alert: Alert) -> bool:
        checks = (
            (self.kind, str(alert.kind)),
            (self.severity, str(alert.severity)),
            (self.mall, alert.mall_id or ""),
            (self.store, alert.store_id),
            (self.state, str(alert.state)),
        )
        return all(allowed is None or value in allowed for allowed, value in checks)


class Route(_Strict):
    match: Match = Match()
    channels: list[str]


class BriefingRoute(_Strict):
    """Where a store's morning briefing goes (its own routing, apart from alerts): stores whose mall is in
    ``mall`` and whose id is in ``store`` (a missing key matches every store)."""

    mall: list[str] | None = None
    store: list[str] | None = None
    channels: list[str]

    def matches(self, store_id: str, mall_id: str | None) -> bool:
        return (self.mall is None or (mall_id or "") in self.mall) and (self.store is None or store_id in self.store)


class RoutingConfig(_Strict):
    channels: dict[str, Channel] = {}
    routes: list[Route] = []
    briefings: list[BriefingRoute] = []
    """Routes of the morning briefing (sinks/briefing): Slack, Teams and webhook channels."""
    disabled: dict[str, str] = {}
    """Channels switched off by an empty ``${NAME}``: name -> why. Routes to them deliver nothing."""

    @model_validator(mode="after")
    def _known_channels(self) -> RoutingConfig:
        for i, route in enumerate(self.routes):
            for name in route.channels:
                if name not in self.channels and name not in self.disabled:
                    raise ValueError(f"routes[{i}].channels: no channel named {name!r}")
        for i, brief in enumerate(self.briefings):
            for name in brief.channels:
                if name not in self.channels and name not in self.disabled:
                    raise ValueError(f"briefings[{i}].channels: no channel named {name!r}")
                if name in self.channels and self.channels[name].type == "pagerduty":
                    raise ValueError(f"briefings[{i}].channels: {name!r} is PagerDuty, which pages, not briefs")
        return self

    def warnings(self, catalogue: Catalogue | None = None) -> list[str]:
        """Disabled channels, routes left without a channel, and (given the catalogue) unknown mall/store ids."""
        notes = [f"channel {name!r} is disabled: {why}" for name, why in self.disabled.items()]
        if self.disabled and not self.channels:
            notes.append("no alert channel is enabled: alerts are consumed and counted as unrouted, not delivered")
        malls = {s.mall_id for s in catalogue.stores if s.mall_id} if catalogue else set()
        stores = {s.id for s in catalogue.stores} if catalogue else set()
        for i, rule in enumerate(self.routes):
            if rule.channels and not any(name in self.channels for name in rule.channels):
                notes.append(f"routes[{i}] delivers nothing: its channels ({', '.join(rule.channels)}) are disabled")
            if catalogue is None:
                continue
            for key, ids, known in (("mall", rule.match.mall, malls), ("store", rule.match.store, stores)):
                for value in ids or ():
                    if value not in known:
                        notes.append(f"routes[{i}].match.{key}: {value!r} is not in the catalogue; it never matches")
        return notes


def expand_env(value: object, env: dict[str, str]) -> object:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise RoutingError(f"environment variable {m.group(1)} is not set")
            return env[m.group(1)]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    return value


def _empty_vars(value: object, env: dict[str, str]) -> list[str]:
    """``${NAME}`` references in ``value`` whose variable is set to the empty string."""
    if isinstance(value, str):
        return [name for name in _VAR.findall(value) if env.get(name) == ""]
    if isinstance(value, dict):
        return [name for v in value.values() for name in _empty_vars(v, env)]
    if isinstance(value, list):
        return [name for v in value for name in _empty_vars(v, env)]
    return []


def _disable_empty(data: dict[object, object], env: dict[str, str]) -> dict[object, object]:
    """``data`` with the channels that use an empty ``${NAME}`` moved from ``channels`` to ``disabled``."""
    channels = data.get("channels")
    if not isinstance(channels, dict):
        return data
    kept: dict[object, object] = {}
    disabled: dict[str, str] = {}
    for name, spec in channels.items():
        empty = _empty_vars(spec, env)
        if empty:
            disabled[str(name)] = f"environment variable {', '.join(dict.fromkeys(empty))} is empty"
        else:
            kept[name] = spec
    return {**data, "channels": kept, "disabled": disabled} if disabled else data


def parse_routes(data: object, path: Path = Path("<routes>"), env: dict[str, str] | None = None) -> RoutingConfig:
    if not isinstance(data, dict):
        raise RoutingError(f"{path}: expected a mapping with 'channels' and 'routes'")
    if "disabled" in data:
        raise RoutingError(f"{path}: 'disabled' is not a key of the routing file (empty ${{NAME}} values disable)")
    environ = dict(os.environ) if env is None else env
    try:
        return RoutingConfig.model_validate(expand_env(_disable_empty(data, environ), environ))
    except RoutingError as exc:
        raise RoutingError(f"{path}: {exc}") from None
    except ValidationError as exc:
        raise RoutingError(validation_lines(path, exc)) from None


def load_routes(path: Path) -> RoutingConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RoutingError(f"{path}: not valid YAML: {exc}") from None
    return parse_routes(data, path)


def route(alert: Alert, config: RoutingConfig) -> list[str]:
    """Channel names for ``alert``, in first-mention order, each once."""
    chosen: list[str] = []
    for rule in config.routes:
        if rule.match.matches(alert):
            chosen.extend(name for name in rule.channels if name not in chosen and name in config.channels)
    return chosen


@dataclass
class RateLimiter:
    """A token bucket per channel: ``rate`` per minute, up to ``burst`` at once. Time is passed in."""

    rate_per_minute: dict[str, float]
    burst: dict[str, int]
    _tokens: dict[str, float] = field(default_factory=dict)
    _stamp: dict[str, float] = field(default_factory=dict)

    def wait(self, channel: str, now: float) -> float:
        """0 and take a token if one is free, else the seconds until one will be (nothing taken)."""
        rate = self.rate_per_minute[channel] / 60.0
        cap = float(self.burst[channel])
        tokens = min(cap, self._tokens.get(channel, cap) + (now - self._stamp.get(channel, now)) * rate)
        self._stamp[channel] = now
        if tokens >= 1.0:
            self._tokens[channel] = tokens - 1.0
            return 0.0
        self._tokens[channel] = tokens
        return (1.0 - tokens) / rate

    @classmethod
    def for_config(cls, config: RoutingConfig) -> RateLimiter:
        return cls(
            {n: c.rate_limit_per_minute for n, c in config.channels.items()},
            {n: c.burst for n, c in config.channels.items()},
        )
