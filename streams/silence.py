"""Silence detection: a till feed (FEED_SILENT) or a camera (CAMERA_SILENT) that stopped sending, in event time.

A silence is judged on the per-minute counts kept in the hour accumulators (tickets per minute, entrance
entries per minute, the minutes each camera sent frames), scanned minute by minute as the partition's
progress passes them; the outcome does not depend on how the inputs interleave or are batched. A fired
silence remembers its window (``StoreState.windows``), so a late record inside it resolves the alert and the
sales or traffic drops it explains are attached to it instead of paging again.

:class:`SilenceDetection` is the part of :class:`streams.engine.Engine` that does this; the engine mixes it
in and calls it from ``apply`` (tracking) and ``_finish`` (the scan).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from schemas.catalogue import Store
from streams import rules
from streams.accumulators import Acc, hour_key
from streams.availability import open_minutes
from streams.hours import HOUR_MS, hour_start
from streams.rules import Finding
from streams.state import StoreState

if TYPE_CHECKING:
    from streams.engine import Output, StreamConfig

FOREVER = 2**62
MAX_ALERT_STATES = 2000


class SilenceDetection:
    """Tracks, scans and fires the silences of the stores of one engine (mixed into it)."""

    cfg: StreamConfig
    hours: MutableMapping[str, Acc]
    cameras: dict[str, list[str]]
    _restated: list[tuple[str, int, int]]
    _suppress: Callable[..., None]
    """The engine's: attach a symptom to the root alert(s) that explain it instead of paging."""

    def _track_ticket(self, st: StoreState, store: Store, ts: int, out: Output) -> None:
        last = st["last_ticket"]
        if last is None or ts >= last:
            st["last_ticket"] = ts
            st["v_since"] = 0
        for cam in self.cameras.get(store.id, ()):
            if ts > st["last_frame"].get(cam, st["first"]):
                st["t_since"][cam] = st["t_since"].get(cam, 0) + 1
        self._resolve_windows(st, store, rules.FEED_SILENT, "", ts, out)

    def _track_frame(self, st: StoreState, store: Store, rec: dict[str, Any], ts: int, out: Output) -> None:
        cam = rec["camera_id"]
        if ts >= st["last_frame"].get(cam, 0):
            st["last_frame"][cam] = ts
            st["t_since"][cam] = 0
        last_ticket = st["last_ticket"] if st["last_ticket"] is not None else st["first"]
        if rec.get("zone_id") is None and ts > last_ticket:
            st["v_since"] += rec["entries"]
        self._resolve_windows(st, store, rules.CAMERA_SILENT, cam, ts, out)

    def _resolve_windows(self, st: StoreState, store: Store, kind: str, cam: str, ts: int, out: Output) -> None:
        """A late record inside a silence the alert was raised for shows the source was not silent."""
        for aid, (wkind, wcam, since, at, hour, *_until) in list(st["windows"].items()):
            if wkind == kind and wcam == cam and since <= ts <= at:
                del st["windows"][aid]
                if kind == rules.FEED_SILENT:
                    self._restated.append((store.id, since, at + 60_000))
                out.alerts += rules.reconcile(
                    st["alerts"],
                    store_id=store.id,
                    hour_start_ms=hour,
                    evaluated=[kind],
                    findings=[],
                    fired_at_ms=ts,
                    tenant_id=store.tenant_id,
                    mall_id=store.mall_id,
                )

    def _timeline(
        self, store: Store, touched: dict[str, Acc], first: int, until: int
    ) -> list[tuple[int, int, int, dict[str, bool]]]:
        """(minute start, tickets, entrance entries, cameras seen) of the complete minutes in [first, until)."""
        starts: list[int] = []
        h = hour_start(max(until - 1, first), store.timezone)
        while h + HOUR_MS > first:
            starts.append(h)
            h = hour_start(h - 1, store.timezone)
        cams = self.cameras.get(store.id, ())
        minutes: list[tuple[int, int, int, dict[str, bool]]] = []
        for start in reversed(starts):
            key = hour_key(store.id, None, start)
            acc = touched.get(key) or self.hours.get(key)
            for m in range(60):
                at = start + m * 60_000
                if at < first or at + 60_000 > until:
                    continue
                if acc is None:
                    minutes.append((at, 0, 0, {}))
                else:
                    seen = {c: bool(acc["mc"].get(c, 0) >> m & 1) for c in cams}
                    minutes.append((at, acc["mt"][m], acc["mv"][m], seen))
        return minutes

    def _scan_silence(self, store: Store, st: StoreState, touched: dict[str, Acc], until: int, out: Output) -> None:
        """FEED_SILENT and CAMERA_SILENT over the minutes completed since the last scan, in event time.

        Evaluated on per-minute counts kept in the hour state, so the outcome does not depend on how the
        two inputs interleave or are batched. The scan carries, per store, the start of the current ticket
        silence and the visitors since (and per camera, its silence and the tickets since); a silence fires
        once, at the first minute both of its conditions hold.
        """
        acfg = self.cfg.alerts
        # A store's first scan starts at its first event (as far back as hours are kept), however large the
        # batch that brought it: the outcome must not depend on how the input was cut into batches.
        first = st.get("scan_at") or max(st["first"] // 60_000 * 60_000, until - self.cfg.hour_retention_ms)
        timeline = self._timeline(store, touched, first, until)
        if not timeline:
            return
        conversion = st.get("conv_ref") or acfg.default_conversion
        feed = st.get("fs") or [first, 0, False, []]
        if len(feed) < 4:
            feed.append([])
        for at, tickets, entries, _seen in timeline:
            if tickets:
                if feed[2]:
                    self._end_silence(st, rules.FEED_SILENT, "", feed[0], at)
                feed = [at + 60_000, 0, False, []]
                continue
            if not feed[2] and not entries and not any(feed[3]) and not self._open_at(store, at):
                # No ticket is expected while the store is closed: a silence starts at the opening, not at the
                # evening's last ticket (the night counted as silence paged at opening on a clean estate).
                feed = [at + 60_000, 0, False, []]
                continue
            feed[3].append(entries)  # entries still shopping (dwell), counted once they could have paid
            if len(feed[3]) > acfg.feed_silent_dwell_minutes:
                feed[1] += feed[3].pop(0)
            if not feed[2]:
                finding = rules.feed_silent(at + 60_000 - feed[0], feed[1], conversion, acfg)
                if finding is not None:
                    feed[2] = True
                    self._fire_silence(store, st, finding, feed[0], "", at, out)
        st["fs"] = feed
        cams: dict[str, list[Any]] = st.get("cs") or {}
        for cam in self.cameras.get(store.id, ()):
            state = cams.get(cam) or [first, 0, False]
            for at, tickets, _entries, seen in timeline:
                if seen.get(cam):
                    if state[2]:
                        self._end_silence(st, rules.CAMERA_SILENT, cam, state[0], at)
                    state = [at + 60_000, 0, False]
                    continue
                state[1] += tickets
                if not state[2]:
                    finding = rules.camera_silent(cam, at + 60_000 - state[0], state[1], acfg)
                    if finding is not None:
                        state[2] = True
                        self._fire_silence(store, st, finding, state[0], cam, at, out)
            cams[cam] = state
        st["cs"] = cams
        st["scan_at"] = timeline[-1][0] + 60_000

    @staticmethod
    def _open_at(store: Store, at: int) -> bool:
        """The store is open in the minute starting at ``at`` (by the catalogue; always without opening hours)."""
        start = hour_start(at, store.timezone)
        return bool(open_minutes(store, start) >> ((at - start) // 60_000) & 1)

    def _fire_silence(
        self, store: Store, st: StoreState, finding: Finding, since: int, cam: str, now: int, out: Output
    ) -> None:
        """Fire a FEED_SILENT / CAMERA_SILENT finding for the hour of ``now``, remembering its window.

        A till that goes quiet during (or right after) an hour with a FIRING SALES_DROP is that incident
        going on (a till ringing a fifth of its sales has long gaps): it is attached to the sales drop."""
        hour = hour_start(now, store.timezone)
        if finding.kind == rules.FEED_SILENT:
            episode = (st.get("episodes") or {}).get(rules.SALES_DROP)
            began = hour_start(since, store.timezone)
            if (
                episode is not None
                and st["alerts"].get(episode[0]) == "FIRING"
                and episode[1] <= began
                and began in (episode[2], hour_start(episode[2] + HOUR_MS, store.timezone))
            ):
                self._suppress(st, store, hour, finding, rules.SALES_DROP, "", out, roots=[episode[0]])
                return
        emitted = rules.fire(
            st["alerts"],
            finding,
            store_id=store.id,
            hour_start_ms=hour,
            fired_at_ms=now,
            tenant_id=store.tenant_id,
            mall_id=store.mall_id,
        )
        if emitted:
            st["windows"][emitted[0]["alert_id"]] = [finding.kind, cam, since, now, hour, None]
            if finding.kind == rules.FEED_SILENT:
                self._restated.append((store.id, since, now + 60_000))
            st.setdefault("roots", {})[emitted[0]["alert_id"]] = emitted[0]
            self._trim_alerts(st)
        out.alerts += emitted

    @staticmethod
    def _end_silence(st: StoreState, kind: str, cam: str, since: int, until: int) -> None:
        """Remember where a fired silence ended (the first minute its source sent data again)."""
        for window in st["windows"].values():
            if window[0] == kind and window[1] == cam and window[2] == since:
                if len(window) < 6:
                    window.append(None)
                window[5] = until

    @staticmethod
    def _silences(st: StoreState, kind: str, start: int, end: int, cam: str | None = None) -> list[str]:
        """Ids of the FIRING silence alerts of ``kind`` whose window overlaps ``[start, end)``."""
        found = []
        for aid, window in st["windows"].items():
            until = window[5] if len(window) > 5 and window[5] is not None else FOREVER
            if window[0] != kind or (cam is not None and window[1] != cam) or st["alerts"].get(aid) != "FIRING":
                continue
            if window[2] < end and until > start:
                found.append(aid)
        return found

    def _ticket_gap(self, st: StoreState, start: int, now: int) -> bool:
        """The store's tickets stopped inside ``[start, now)`` for a while, or a FEED_SILENT covers it."""
        feed = st.get("fs")
        gap = feed is not None and not feed[2] and now - feed[0] >= self.cfg.alerts.feed_silent_minutes * 30_000
        return gap or bool(self._silences(st, rules.FEED_SILENT, start, now))

    @staticmethod
    def _trim_alerts(st: StoreState) -> None:
        """Keep the newest MAX_ALERT_STATES alert states, silence windows and root alerts of a store."""
        states: dict[str, Any]
        for states in (st["alerts"], st["windows"], st.setdefault("roots", {}), st.get("pooled") or {}):
            while len(states) > MAX_ALERT_STATES:
                del states[next(iter(states))]
