"""STAND-INS for Slack, Microsoft Teams and PagerDuty webhooks, and a generic signed-webhook receiver.

These services cannot run here. The server below answers as the vendors document and checks every request
against the documented shape, so a malformed payload fails the test instead of passing silently:
- Slack incoming webhooks (https://api.slack.com/messaging/webhooks, Block Kit reference): JSON with ``text``
  and/or ``blocks`` (at most 50); block types header (plain_text, <= 150 chars), section (text <= 3000 and/or
  at most 10 ``fields`` of <= 2000), context (<= 10 elements), divider. Success is HTTP 200 with body ``ok``;
  errors are 400 ``invalid_blocks`` / ``no_text``; throttling is 429 with ``Retry-After``.
- Teams incoming webhook / Workflows: ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "content": {"type": "AdaptiveCard", "version", "body"}}]}``;
  answers 202 Accepted.
- PagerDuty Events API v2 (POST /v2/enqueue): ``routing_key`` (32 characters), ``event_action`` trigger /
  acknowledge / resolve, ``dedup_key`` <= 255; a trigger needs ``payload.summary`` (<= 1024), ``source`` and
  ``severity`` (critical, error, warning, info), optional ISO 8601 ``timestamp``. Success is 202
  ``{"status": "success", "message": "Event processed", "dedup_key": ...}``; a bad event is 400
  ``{"status": "invalid event", "errors": [...]}``.
- Generic webhook: ``X-Tillflow-Signature`` must be the HMAC-SHA256 of ``<X-Tillflow-Timestamp>.<body>``.
Failures can be injected per path (status codes served before the normal answer).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sinks.alerts.payloads import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def slack_problems(body: Any) -> list[str]:
    problems = []
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return ["no_text"]
    blocks = body.get("blocks", [])
    if len(blocks) > 50:
        problems.append("more than 50 blocks")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
                problems.append(f"blocks[{i}]: header needs plain_text of 1-150 chars")
        elif kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                problems.append(f"blocks[{i}]: section needs text or fields")
            if text is not None and (text.get("type") not in ("mrkdwn", "plain_text") or len(text["text"]) > 3000):
                problems.append(f"blocks[{i}]: section text invalid")
            if fields is not None and (len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields)):
                problems.append(f"blocks[{i}]: at most 10 fields of 2000 chars")
        elif kind == "context":
            if not 0 < len(block.get("elements", [])) <= 10:
                problems.append(f"blocks[{i}]: context needs 1-10 elements")
        elif kind != "divider":
            problems.append(f"blocks[{i}]: unknown block type {kind!r}")
    return problems


def teams_problems(body: Any) -> list[str]:
    if not isinstance(body, dict) or body.get("type") != "message":
        return ["type must be 'message'"]
    attachments = body.get("attachments") or []
    if not attachments:
        return ["attachments missing"]
    att = attachments[0]
    if att.get("contentType") != "application/vnd.microsoft.card.adaptive":
        return ["contentType must be application/vnd.microsoft.card.adaptive"]
    card = att.get("content") or {}
    problems = []
    if card.get("type") != "AdaptiveCard" or not card.get("version") or not isinstance(card.get("body"), list):
        problems.append("content must be an AdaptiveCard with version and body")
    for i, element in enumerate(card.get("body", [])):
        if element.get("type") == "TextBlock" and not element.get("text"):
            problems.append(f"body[{i}]: TextBlock without text")
        if element.get("type") == "FactSet" and not all({"title", "value"} <= set(f) for f in element.get("facts", [])):
            problems.append(f"body[{i}]: FactSet facts need title and value")
    return problems


def pagerduty_problems(body: Any) -> list[str]:
    problems = []
    if not isinstance(body, dict):
        return ["Event object is invalid"]
    if len(str(body.get("routing_key", ""))) != 32:
        problems.append("'routing_key' must be 32 characters")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        problems.append("'event_action' is invalid")
    if len(str(body.get("dedup_key", ""))) > 255:
        problems.append("'dedup_key' longer than 255")
    if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
        problems.append("'dedup_key' is required to acknowledge or resolve")
    if action == "trigger":
        payload = body.get("payload") or {}
        if not payload.get("summary") or len(payload["summary"]) > 1024:
            problems.append("'payload.summary' is missing or too long")
        if not payload.get("source"):
            problems.append("'payload.source' is missing")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            problems.append("'payload.severity' is invalid")
        if "timestamp" in payload:
            try:
                datetime.fromisoformat(payload["timestamp"])
            except ValueError:
                problems.append("'payload.timestamp' is not ISO 8601")
    return problems


class VendorStandIn:
    """Serves /slack/..., /teams/..., /v2/enqueue and /hook on 127.0.0.1 (see the module docstring)."""

    def __init__(self, webhook_secret: str = "") -> None:
        self.webhook_secret = webhook_secret
        self.received: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.fail_next: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"standin": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def inject(self, prefix: str, *failures: tuple[int, dict[str, str]]) -> None:
        """Answer the next requests under ``prefix`` with these (status, headers) first."""
        self.fail_next.setdefault(prefix, []).extend(failures)

    def of(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["path"].startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    standin: VendorStandIn

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        with self.standin.lock:
            for prefix, queue in self.standin.fail_next.items():
                if path.startswith(prefix) and queue:
                    status, headers = queue.pop(0)
                    self._send(status, b"injected failure", headers)
                    return
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            self._send(415, b"unsupported media type")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(400, b"invalid_payload")
            return
        record = {"path": path, "body": body, "headers": dict(self.headers)}
        if path.startswith("/slack/"):
            problems = slack_problems(body)
            answer = (400, b"invalid_blocks") if problems else (200, b"ok")
        elif path.startswith("/teams/"):
            problems = teams_problems(body)
            answer = (400, b"Bad payload") if problems else (202, b"")
        elif path == "/v2/enqueue":
            problems = pagerduty_problems(body)
            if problems:
                answer = (400, json.dumps({"status": "invalid event", "message": "Event object is invalid",
                                           "errors": problems}).encode())  # fmt: skip
            else:
                answer = (202, json.dumps({"status": "success", "message": "Event processed",
                                           "dedup_key": body["dedup_key"]}).encode())  # fmt: skip
        elif path == "/hook":
            ok = verify(self.standin.webhook_secret, self.headers.get(TIMESTAMP_HEADER, "0"), raw,
                        self.headers.get(SIGNATURE_HEADER, ""))  # fmt: skip
            problems = [] if ok else ["bad signature"]
            answer = (204, b"") if ok else (401, b"bad signature")
        else:
            problems, answer = [f"no such path {path}"], (404, b"no_service")
        record["problems"] = problems
        with self.standin.lock:
            (self.standin.rejected if problems else self.standin.received).append(record)
        self._send(*answer)
