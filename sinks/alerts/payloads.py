"""Request bodies for each channel, built from an :class:`Alert`: pure functions, no I/O.

- Slack incoming webhook: ``text`` (the notification fallback) plus Block Kit ``blocks`` (header, section
  with fields, context). Limits respected: header 150 chars, section text 3000, at most 10 fields.
- Microsoft Teams webhook (Workflows or the legacy connector): a ``message`` with one attachment of
  ``contentType`` ``application/vnd.microsoft.card.adaptive`` whose ``content`` is an Adaptive Card 1.4.
- PagerDuty Events API v2: ``trigger`` with ``payload`` (summary <= 1024 chars, source, severity
  critical/warning/info, timestamp, component, group, class, custom_details) and ``resolve``, both with
  ``dedup_key`` = the alert id, so the resolve closes the incident the trigger opened.
- Generic webhook: the alert's JSON form, signed with HMAC-SHA256 over ``<timestamp>.<body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from schemas.models import Alert, AlertState, Severity

SIGNATURE_HEADER = "X-Tillflow-Signature"
TIMESTAMP_HEADER = "X-Tillflow-Timestamp"
_EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
}
_PD_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def title(alert: Alert, store_name: str | None = None) -> str:
    where = store_name or alert.store_id
    prefix = "Resolved" if alert.state == AlertState.RESOLVED else str(alert.severity).capitalize()
    return f"{prefix}: {str(alert.kind).replace('_', ' ').lower()} at {where}"


def facts(alert: Alert) -> list[tuple[str, str]]:
    rows = [
        ("Store", alert.store_id),
        ("Hour (UTC)", alert.hour_start.strftime("%Y-%m-%d %H:%M")),
        ("Observed", _num(alert.observed)),
        ("Expected", _num(alert.expected)),
        ("Severity", str(alert.severity)),
        ("State", str(alert.state)),
    ]
    if alert.mall_id:
        rows.insert(1, ("Mall", alert.mall_id))
    return rows


def slack_message(alert: Alert, store_name: str | None = None) -> dict[str, Any]:
    head = title(alert, store_name)
    emoji = ":white_check_mark:" if alert.state == AlertState.RESOLVED else _EMOJI[alert.severity]
    return {
        "text": _clip(f"{head}: {alert.message}", 3000),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(head, 150), "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"{emoji} {alert.message}", 3000)}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", 2000)} for k, v in facts(alert)[:10]],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"tillflow · alert `{alert.alert_id}` · fired {alert.fired_at:%H:%M} UTC",
                    }
                ],
            },
        ],
    }


def teams_message(alert: Alert, store_name: str | None = None) -> dict[str, Any]:
    resolved = alert.state == AlertState.RESOLVED
    color = "Good" if resolved else ("Attention" if alert.severity == Severity.CRITICAL else "Warning")
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": title(alert, store_name), "weight": "Bolder", "size": "Medium",
             "color": color, "wrap": True},
            {"type": "TextBlock", "text": alert.message, "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(alert)]},
            {"type": "TextBlock", "text": f"alert {alert.alert_id}", "isSubtle": True, "size": "Small", "wrap": True},
        ],
    }  # fmt: skip
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def pagerduty_event(alert: Alert, routing_key: str, store_name: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"routing_key": routing_key, "dedup_key": _clip(alert.alert_id, 255)}
    if alert.state == AlertState.RESOLVED:
        event["event_action"] = "resolve"
        return event
    event["event_action"] = "trigger"
    event["client"] = "tillflow"
    event["payload"] = {
        "summary": _clip(f"{title(alert, store_name)}: {alert.message}", 1024),
        "source": alert.store_id,
        "severity": _PD_SEVERITY[alert.severity],
        "timestamp": alert.fired_at.isoformat(),
        "component": alert.store_id,
        "group": alert.mall_id or "street",
        "class": str(alert.kind),
        "custom_details": {
            "hour_start": alert.hour_start.isoformat(),
            "observed": alert.observed,
            "expected": alert.expected,
            **alert.details,
        },
    }
    return event


def webhook_body(alert: Alert) -> bytes:
    """The alert's JSON form with stable key order (what the signature covers)."""
    return json.dumps(
        {"type": "tillflow.alert", "alert": alert.to_json()}, sort_keys=True, separators=(",", ":")
    ).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``<timestamp>.`` followed by the body."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
