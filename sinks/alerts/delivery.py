"""One HTTP delivery to one channel: build the request, send it, read the vendor's answer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from schemas.models import Alert
from sinks.alerts.payloads import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    pagerduty_event,
    sign,
    slack_message,
    teams_message,
    webhook_body,
)
from sinks.alerts.routing import Channel


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    retry_after: float | None = None
    """Seconds the vendor asked us to wait (HTTP 429 / 503 Retry-After)."""


def build_request(channel: Channel, alert: Alert, store_name: str | None = None, now: float | None = None) -> Request:
    """The HTTP request for ``alert`` on ``channel`` (pure apart from the signing time)."""
    headers = {"Content-Type": "application/json", "User-Agent": "tillflow-alerts"}
    payload: Any
    if channel.type == "slack":
        payload = slack_message(alert, store_name)
    elif channel.type == "teams":
        payload = teams_message(alert, store_name)
    elif channel.type == "pagerduty":
        payload = pagerduty_event(alert, channel.routing_key or "", store_name)
    else:
        body = webhook_body(alert)
        stamp = int(time.time() if now is None else now)
        headers[TIMESTAMP_HEADER] = str(stamp)
        headers[SIGNATURE_HEADER] = sign(channel.secret or "", stamp, body)
        return Request(channel.endpoint, body, headers)
    return Request(channel.endpoint, json.dumps(payload).encode(), headers)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def read_outcome(channel: Channel, status: int, text: str, retry_after: float | None) -> Outcome:
    """Success per vendor: Slack 200 ``ok``; Teams 200/202; PagerDuty 202 ``status: success``; webhook 2xx."""
    if channel.type == "slack":
        ok = status == 200 and text.strip() == "ok"
    elif channel.type == "pagerduty":
        try:
            ok = status == 202 and json.loads(text).get("status") == "success"
        except ValueError:
            ok = False
    else:
        ok = 200 <= status < 300
    return Outcome(True) if ok else Outcome(False, f"HTTP {status}: {text[:300]}", retry_after)


def send(
    session: requests.Session, channel: Channel, alert: Alert, timeout: float, store_name: str | None = None
) -> Outcome:
    req = build_request(channel, alert, store_name)
    try:
        response = session.post(req.url, data=req.body, headers=req.headers, timeout=timeout)
    except requests.RequestException as exc:
        return Outcome(False, f"{type(exc).__name__}: {exc}")
    return read_outcome(channel, response.status_code, response.text, _retry_after(response))
