"""POS vendors' webhook notifications: signature checks and what each notification names. Pure, no I/O.

Per vendor, as documented:

* **Square** signs ``notification_url + raw body`` with HMAC-SHA256 and the subscription's signature key,
  base64, in ``x-square-hmacsha256-signature``. The body is an event ``{"event_id", "type", "created_at",
  "data": {"object": ...}}``; ``order.updated`` names the order (``order_updated.order_id``), ``refund.updated``
  names the refund and its ``order_id``. The full order is fetched (BatchRetrieveOrders).
* **Shopify** signs the raw body with HMAC-SHA256 and the app's client secret, base64, in
  ``X-Shopify-Hmac-Sha256``; ``X-Shopify-Topic``, ``X-Shopify-Event-Id`` (the same on every retry) and
  ``X-Shopify-Triggered-At`` come beside it. ``orders/create`` and ``orders/updated`` carry the order (REST shape,
  with ``admin_graphql_api_id``), ``refunds/create`` the refund with its ``order_id``: the order is fetched
  through the GraphQL Admin API, so webhooks and the poller map the same shape.
* **Clover** sends the app's Clover Auth Code in ``X-Clover-Auth`` (compared, not an HMAC) and a body
  ``{"appId", "merchants": {"<mId>": [{"objectId": "O:<orderId>", "type": "CREATE|UPDATE|DELETE", "ts": ms}]}}``:
  ids only, the order is fetched. The endpoint check (``{"verificationCode": ...}``) is answered 200 and logged.
* **Lightspeed X-Series** posts ``application/x-www-form-urlencoded`` with a ``payload`` field (the API 1.0 object
  as JSON) and ``type`` (``sale.update``); ``X-Signature: signature=<hex>, algorithm=HMAC-SHA256`` is the
  HMAC-SHA256 of the raw body with the app's client secret. The sale is fetched from API 2.0 by id.

Every comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from tillflow.errors import ContractError

# How long each vendor keeps retrying a notification that was not answered 2xx: an older one is refused as a
# replay (a source can set its own `webhook.tolerance`).
DEFAULT_TOLERANCE = {
    "square": timedelta(hours=24),
    "shopify": timedelta(hours=48),
    "clover": timedelta(hours=24),
    "lightspeed": timedelta(hours=48),
}
FUTURE_SKEW = timedelta(minutes=5)


class Refused(ContractError):
    """A notification that is not answered 2xx: ``status`` is 401 (signature) or 400 (stale, malformed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Notice:
    """One thing a notification says changed: the record to (re)read, and when the vendor said so."""

    event_id: str
    scope: str
    """Square location id, Clover merchant id, or "all"."""
    record_id: str
    """Square order id, Shopify order id (global id), Clover order id, Lightspeed sale id."""
    occurred_at: datetime | None
    kind: str


def _hmac_sha256(key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, hashlib.sha256).digest()


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.strip().encode(), b.encode())


def verify(vendor: str, secret: str, headers: dict[str, str], body: bytes, notification_url: str | None) -> None:
    """Raise Refused(401) unless the request carries the vendor's valid signature. ``headers``: lower-case keys."""
    if vendor == "square":
        if not notification_url:
            raise Refused(401, "square source has no webhook.notification_url (part of what Square signs)")
        want = base64.b64encode(_hmac_sha256(secret, notification_url.encode() + body)).decode()
        ok = _same(headers.get("x-square-hmacsha256-signature"), want)
    elif vendor == "shopify":
        want = base64.b64encode(_hmac_sha256(secret, body)).decode()
        ok = _same(headers.get("x-shopify-hmac-sha256"), want)
    elif vendor == "clover":
        ok = _same(headers.get("x-clover-auth"), secret)
    elif vendor == "lightspeed":
        parts = dict(p.strip().split("=", 1) for p in (headers.get("x-signature") or "").split(",") if "=" in p)
        want = _hmac_sha256(secret, body).hex()
        ok = parts.get("algorithm", "").upper() == "HMAC-SHA256" and _same(parts.get("signature"), want)
    else:
        raise Refused(400, f"no webhooks for vendor {vendor}")
    if not ok:
        raise Refused(401, f"{vendor} signature does not match")


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Refused(400, f"time {value!r} is not an ISO time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "body is not JSON") from None


def notices(vendor: str, headers: dict[str, str], body: bytes) -> list[Notice]:
    """What a verified notification asks to re-read (empty: nothing tillflow maps, answered 200)."""
    if vendor == "square":
        event = _json(body)
        obj = (event.get("data") or {}).get("object") or {}
        kind = str(event.get("type") or "")
        if kind == "order.updated" or kind == "order.created":
            o = obj.get("order_updated") or obj.get("order_created") or {}
            order_id, location = o.get("order_id"), o.get("location_id")
        elif kind in ("refund.updated", "refund.created"):
            r = obj.get("refund") or {}
            order_id, location = r.get("order_id"), r.get("location_id")
        else:
            return []
        if not order_id or not event.get("event_id"):
            raise Refused(400, f"square {kind} without event_id or order id")
        return [Notice(str(event["event_id"]), str(location or ""), str(order_id), _time(event.get("created_at")),
                       kind)]  # fmt: skip
    if vendor == "shopify":
        topic = headers.get("x-shopify-topic", "")
        if topic not in ("orders/create", "orders/updated", "refunds/create"):
            return []
        data = _json(body)
        order = data.get("admin_graphql_api_id") if topic != "refunds/create" else None
        order = order or f"gid://shopify/Order/{data.get('order_id') if topic == 'refunds/create' else data.get('id')}"
        event_id = headers.get("x-shopify-event-id") or headers.get("x-shopify-webhook-id")
        if not event_id or order.endswith("/None"):
            raise Refused(400, f"shopify {topic} without an event id or order id")
        return [Notice(event_id, "all", order, _time(headers.get("x-shopify-triggered-at")), topic)]
    if vendor == "clover":
        data = _json(body)
        out = []
        for merchant, updates in (data.get("merchants") or {}).items():
            for u in updates or ():
                object_id, kind = str(u.get("objectId") or ""), str(u.get("type") or "")
                if not object_id.startswith("O:") or kind == "DELETE":
                    continue
                ts = u.get("ts")
                out.append(Notice(f"{merchant}:{object_id}:{kind}:{ts}", merchant, object_id[2:],
                                  _time(ts), kind))  # fmt: skip
        return out
    if vendor == "lightspeed":
        form = parse_qs(body.decode("utf-8", "replace"))
        kind = (form.get("type") or [""])[0]
        if kind not in ("sale.update",):
            return []
        payload = _json((form.get("payload") or ["{}"])[0].encode())
        sale_id = payload.get("id")
        if not sale_id:
            raise Refused(400, "lightspeed sale.update without a sale id")
        event_id = f"{sale_id}:{hashlib.sha256(body).hexdigest()[:16]}"
        return [Notice(event_id, "all", str(sale_id), _time(payload.get("updated_at") or payload.get("created_at")),
                       kind)]  # fmt: skip
    raise Refused(400, f"no webhooks for vendor {vendor}")


def check_fresh(notice: Notice, now: datetime, tolerance: timedelta) -> None:
    """Refuse a notification older than the tolerance (a replay) or dated in the future."""
    if notice.occurred_at is None:
        return
    if notice.occurred_at < now - tolerance:
        raise Refused(400, f"notification {notice.event_id} of {notice.occurred_at.isoformat()} is older than "
                           f"{tolerance} (a replay?)")  # fmt: skip
    if notice.occurred_at > now + FUTURE_SKEW:
        raise Refused(400, f"notification {notice.event_id} is dated in the future")
