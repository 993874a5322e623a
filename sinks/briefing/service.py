"""The morning briefing end to end: read a store's day from ClickHouse, compose, chart, store, deliver.

- :func:`build` reads the day's final store hours, storeops rows, the alerts of the day (latest state) and the
  same weekday of the four previous weeks, and composes the briefing and its chart.
- :func:`save` writes it to ``briefings`` with the hour and alert ids it used (the audit trail).
- :func:`deliver` sends it through the alert channels of the routes file's ``briefings`` routes: Slack (text;
  incoming webhooks take no uploads), Teams (an Adaptive Card with the chart as a data-URI image) and the
  signed webhook (JSON with the chart as base64). PagerDuty is for pages, not briefings.
- :func:`due` says which stores are due: 06:00 local time has passed and the previous local day has no row yet,
  so a restarted scheduler neither skips nor repeats a briefing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from schemas.catalogue import Catalogue, Store
from sinks.alerts.delivery import Outcome, read_outcome
from sinks.alerts.payloads import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from sinks.alerts.routing import Channel, RoutingConfig
from sinks.briefing.chart import day_chart
from sinks.briefing.compose import Briefing, DayTotals, compose

SEND_AT = dtime(6, 0)

HOURS_SQL = """
SELECT hour_start, local_hour, visitors, transactions, net_revenue, quality_flags, is_final, revision
FROM conversion_hourly FINAL
WHERE store_id = {store:String} AND zone_id = '' AND local_date = {day:Date}
ORDER BY hour_start
"""
OPS_SQL = """
SELECT hour_start, staff_minutes, staff_on_floor, visitors_per_staff, sales_per_labour_hour, queue_minutes,
       queue_mean, queue_p90, queue_max, queue_minutes_over
FROM storeops_hourly FINAL
WHERE store_id = {store:String} AND grain = 'STORE' AND local_date = {day:Date}
"""
ZONES_SQL = """
SELECT dimension AS zone, sum(net_revenue) AS net_revenue, sum(transactions) AS transactions,
       sumOrNull(visitors) AS visitors
FROM storeops_hourly FINAL
WHERE store_id = {store:String} AND grain = 'ZONE' AND local_date = {day:Date}
GROUP BY zone
ORDER BY net_revenue DESC, zone
"""
ALERTS_SQL = """
SELECT alert_id, kind, state, severity, hour_start, message
FROM alerts FINAL
WHERE store_id = {store:String} AND hour_start >= {lo:DateTime64(3)} AND hour_start < {hi:DateTime64(3)}
ORDER BY hour_start, kind
"""
BASELINE_SQL = """
SELECT local_date, sum(visitors), sum(transactions), sum(net_revenue)
FROM conversion_hourly FINAL
WHERE store_id = {store:String} AND zone_id = '' AND local_date IN {days:Array(Date)}
GROUP BY local_date
ORDER BY local_date
"""


def _rows(client: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=params)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def day_bounds(store: Store, day: date) -> tuple[datetime, datetime]:
    lo = datetime.combine(day, dtime(0), tzinfo=store.tz).astimezone(UTC)
    hi = datetime.combine(day + timedelta(days=1), dtime(0), tzinfo=store.tz).astimezone(UTC)
    return lo, hi


def build(
    client: Any, catalogue: Catalogue, store_id: str, day: date, phrase: Callable[[Briefing], str] | None = None
) -> tuple[Briefing, bytes]:
    store = catalogue.store(store_id)
    hours = _rows(client, HOURS_SQL, store=store_id, day=day)
    for h in hours:
        h["hour_start"] = _utc(h["hour_start"])
    ops = {_utc(o["hour_start"]): o for o in _rows(client, OPS_SQL, store=store_id, day=day)}
    lo, hi = day_bounds(store, day)
    alerts = _rows(client, ALERTS_SQL, store=store_id, lo=lo, hi=hi)
    for a in alerts:
        a["hour_start"] = _utc(a["hour_start"])
    zones = _rows(client, ZONES_SQL, store=store_id, day=day)
    weeks = [day - timedelta(days=7 * k) for k in range(1, 5)]
    result = client.query(BASELINE_SQL, parameters={"store": store_id, "days": weeks})
    baseline = [DayTotals(d, int(v), int(t), int(n)) for d, v, t, n in result.result_rows]
    briefing = compose(
        store_id=store_id, store_name=store.name, timezone=store.timezone, currency=store.currency, day=day,
        hours=hours, ops=ops, baseline=baseline, alerts=alerts, queue_people=store.queue_alert.people, phrase=phrase,
        zones=zones,
    )  # fmt: skip
    png = day_chart(f"{store.name}, {day:%a %d %b %Y}", briefing.hours, briefing.alerts, store.timezone)
    return briefing, png


BRIEFING_COLUMNS = [
    "store_id", "local_date", "timezone", "generated_at", "template", "text", "figures", "hour_ids", "alert_ids",
    "chart_sha256", "delivered_to",
]  # fmt: skip


def save(client: Any, briefing: Briefing, png: bytes, delivered_to: Iterable[str], now: datetime) -> None:
    row = [
        briefing.store_id, briefing.local_date, briefing.timezone, now, briefing.template, briefing.text,
        json.dumps(briefing.figures, sort_keys=True, default=str), briefing.hour_ids, briefing.alert_ids,
        hashlib.sha256(png).hexdigest(), sorted(delivered_to),
    ]  # fmt: skip
    client.insert("briefings", [row], column_names=BRIEFING_COLUMNS)


def channels_for(config: RoutingConfig, store: Store) -> list[str]:
    """Channels of every ``briefings`` route that matches the store (each once, enabled ones only)."""
    out: list[str] = []
    for rule in config.briefings:
        if rule.matches(store.id, store.mall_id):
            out += [c for c in rule.channels if c in config.channels and c not in out]
    return out


def payload(channel: Channel, briefing: Briefing, png: bytes, now: float) -> tuple[bytes, dict[str, str]]:
    """The request body and headers of a briefing on one channel."""
    headers = {"Content-Type": "application/json", "User-Agent": "tillflow-briefing"}
    title = briefing.text.splitlines()[0]
    if channel.type == "slack":
        body: Any = {"text": briefing.text, "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(briefing.text.splitlines()[1:])[:2900]}},
        ]}  # fmt: skip
    elif channel.type == "teams":
        image = "data:image/png;base64," + base64.b64encode(png).decode()
        blocks: list[dict[str, Any]] = [
            {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True}
        ]
        blocks += [{"type": "TextBlock", "text": line, "wrap": True} for line in briefing.text.splitlines()[1:]]
        blocks.append({"type": "Image", "url": image, "altText": "visitors and conversion by hour"})
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": blocks}  # fmt: skip
        body = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                                    "content": card}]}  # fmt: skip
    else:
        data = json.dumps({
            "type": "briefing", "store_id": briefing.store_id, "local_date": briefing.local_date.isoformat(),
            "text": briefing.text, "figures": briefing.figures, "hour_ids": briefing.hour_ids,
            "alert_ids": briefing.alert_ids, "chart_png_base64": base64.b64encode(png).decode(),
        }, sort_keys=True, default=str).encode()  # fmt: skip
        stamp = int(now)
        headers[TIMESTAMP_HEADER] = str(stamp)
        headers[SIGNATURE_HEADER] = sign(channel.secret or "", stamp, data)
        return data, headers
    return json.dumps(body).encode(), headers


def deliver(
    session: Any, config: RoutingConfig, store: Store, briefing: Briefing, png: bytes, timeout: float = 10.0
) -> dict[str, Outcome]:
    """Send to every routed channel once; the outcome per channel (the caller records which succeeded)."""
    outcomes: dict[str, Outcome] = {}
    for name in channels_for(config, store):
        channel = config.channels[name]
        body, headers = payload(channel, briefing, png, time.time())
        try:
            response = session.post(channel.endpoint, data=body, headers=headers, timeout=timeout)
        except Exception as exc:
            outcomes[name] = Outcome(False, f"{type(exc).__name__}: {exc}")
            continue
        outcomes[name] = read_outcome(channel, response.status_code, response.text, None)
    return outcomes


def due(catalogue: Catalogue, now: datetime, done: set[tuple[str, date]]) -> list[tuple[str, date]]:
    """(store, local date) briefings due at ``now``: past 06:00 local, for the previous local day, not done."""
    out = []
    for store in catalogue.stores:
        local = now.astimezone(store.tz)
        if local.time() >= SEND_AT:
            day = local.date() - timedelta(days=1)
            if (store.id, day) not in done:
                out.append((store.id, day))
    return out


def done_briefings(client: Any, since: date) -> set[tuple[str, date]]:
    result = client.query("SELECT store_id, local_date FROM briefings FINAL WHERE local_date >= {d:Date}",
                          parameters={"d": since})  # fmt: skip
    return {(str(s), d) for s, d in result.result_rows}
