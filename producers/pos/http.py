"""HTTP to a vendor API: authentication (API key or OAuth 2.0 with rotating refresh tokens) and retries.

429 waits for ``Retry-After`` (seconds or an HTTP date), up to ``retry_after_max`` (a longer one is cut to it,
with a warning); 5xx, and a 429 without ``Retry-After``, back off exponentially with full jitter up to
``backoff_max``; 401 refreshes the OAuth token once. After ``max_attempts`` tries the request raises
:class:`SourceUnavailable` and the sync stops with its checkpoint kept. Tokens never appear in logs or errors.
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from tillflow.errors import SourceError
from tillflow.retry import backoff, pause

log = logging.getLogger(__name__)


class SourceUnavailable(SourceError):
    """The vendor API kept failing; nothing after the last acknowledged page was checkpointed."""


class RecordNotFound(SourceUnavailable):
    """The vendor answered 404 for one record (deleted, or another account's)."""


class AuthFailed(SourceError):
    """The vendor refused the credentials (and a refresh, if OAuth)."""


class StopRequested(RuntimeError):
    """A stop was asked for (SIGTERM) while waiting to retry; nothing after the last acknowledged page was read."""


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or bad."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass
class TokenRequest:
    """How a vendor's token endpoint wants a refresh: URL, body and whether it is JSON or a form."""

    url: str
    body: dict[str, str]
    as_json: bool


class TokenFile:
    """Rotated OAuth tokens, kept in a 0600 file written atomically (a crash never leaves half a file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def save(self, tokens: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(tokens, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class OAuth:
    """An access token refreshed with a refresh token that the vendor rotates on every use."""

    def __init__(self, store: TokenFile, first_refresh_token: Callable[[], str],
                 token_request: Callable[[str], TokenRequest]) -> None:  # fmt: skip
        self.store = store
        self._first = first_refresh_token
        self._request = token_request
        self.refreshes = 0

    def access_token(self) -> str | None:
        token = self.store.load().get("access_token")
        return str(token) if token else None

    def refresh(self, session: requests.Session, timeout: float) -> str:
        saved = self.store.load()
        refresh_token = saved.get("refresh_token") or self._first()
        req = self._request(refresh_token)
        kw: dict[str, Any] = {"json": req.body} if req.as_json else {"data": req.body}
        try:
            resp = session.post(req.url, timeout=timeout, **kw)
        except requests.RequestException as exc:
            raise SourceUnavailable(f"token endpoint {req.url}: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise AuthFailed(f"token endpoint {req.url} refused the refresh token: HTTP {resp.status_code}")
        body = resp.json()
        access = body.get("access_token")
        if not access:
            raise AuthFailed(f"token endpoint {req.url} returned no access_token")
        # Rotation: keep the new refresh token before using the access token, so a crash cannot lose it.
        self.store.save({"access_token": access, "refresh_token": body.get("refresh_token") or refresh_token,
                         "refreshed_at": time.time()})  # fmt: skip
        self.refreshes += 1
        log.info("refreshed OAuth access token at %s", req.url)
        return str(access)


class VendorClient:
    """A requests session with the vendor's auth header, retries and rate-limit handling."""

    def __init__(
        self,
        auth_header: Callable[[str], dict[str, str]],
        api_key: str | None = None,
        oauth: OAuth | None = None,
        max_attempts: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        retry_after_max: float = 900.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        extra_headers: dict[str, str] | None = None,
        stopped: Callable[[], bool] | None = None,
    ) -> None:
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **(extra_headers or {})})
        self._header = auth_header
        self._api_key = api_key
        self.oauth = oauth
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.timeout = timeout
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.stopped = stopped
        self.requests = 0
        self.waits: list[float] = []

    def _token(self, force_refresh: bool = False) -> str:
        if self.oauth is None:
            if not self._api_key:
                raise AuthFailed("no API key configured")
            return self._api_key
        token = None if force_refresh else self.oauth.access_token()
        return token or self.oauth.refresh(self.session, self.timeout)

    def wait(self, seconds: float) -> None:
        """Wait before a request the vendor asked to delay (e.g. Shopify's query cost bucket); a stop request
        ends the wait (StopRequested)."""
        if seconds > 0:
            self._wait(seconds)

    def _wait(self, seconds: float) -> None:
        """Sleep before a retry; with ``stopped``, in steps of at most a second, raising StopRequested once set."""
        self.waits.append(seconds)
        if self.stopped is None:
            self.sleep(seconds)
            return
        if pause(seconds, self.stopped, step=1.0, sleep=self.sleep):
            raise StopRequested("stop requested while waiting to retry")

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        """Send with retries; returns a 2xx response or raises SourceUnavailable / AuthFailed."""
        refreshed = False
        token = self._token()
        last = ""
        for attempt in range(self.max_attempts):
            self.requests += 1
            try:
                resp = self.session.request(method, url, headers=self._header(token), timeout=self.timeout, **kw)
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}"
                self._wait(backoff(attempt, self.backoff_base, self.backoff_max, jitter=True, rng=self.rng))
                continue
            if resp.status_code == 401 and self.oauth is not None and not refreshed:
                token = self._token(force_refresh=True)
                refreshed = True
                continue
            if resp.status_code == 401 or resp.status_code == 403:
                raise AuthFailed(f"{method} {_safe(url)}: HTTP {resp.status_code} (credentials refused)")
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                wait = retry_after(resp.headers.get("Retry-After")) if resp.status_code == 429 else None
                if wait is None:
                    wait = backoff(attempt, self.backoff_base, self.backoff_max, jitter=True, rng=self.rng)
                elif wait > self.retry_after_max:
                    log.warning("%s %s: Retry-After %.0fs is longer than retry_after_max, waiting %.0fs",
                                method, _safe(url), wait, self.retry_after_max)  # fmt: skip
                    wait = self.retry_after_max
                if attempt + 1 < self.max_attempts:
                    log.warning("%s %s: %s, retrying in %.1fs", method, _safe(url), last, wait)
                    self._wait(wait)
                continue
            if resp.status_code >= 400:
                kind = RecordNotFound if resp.status_code == 404 else SourceUnavailable
                raise kind(f"{method} {_safe(url)}: HTTP {resp.status_code}: {resp.text[:300]}")
            return resp
        raise SourceUnavailable(f"{method} {_safe(url)}: gave up after {self.max_attempts} attempts ({last})")


def _safe(url: str) -> str:
    """The URL without its query (which may carry cursors, never tokens, but keep logs short)."""
    return url.split("?", 1)[0]
