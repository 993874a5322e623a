"""The UNDERREPORTING stage: daily figures per tenant, judged against its own history and its mall peers.

The hour stage (streams/engine.py) sends, for every final or corrected store-hour, the hour's counts, its
store-local date and whether it is usable (complete camera data, tickets delivered, no other alert
explains it), keyed by the store's group: its mall (a street store is a group of its own). This stage
keeps per group the hour counts of the last ``keep_days`` days per store and the alert states. A store's
day is complete once the store reported an hour of a later local date (or at the end of a replay); each
newly completed day, and each correction of a complete day, re-runs :func:`streams.underreporting.evaluate`
over the group's complete days and emits what changed: FIRING for a new episode, RESOLVED when the tenant
is back to normal (or a correction removed the episode).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, cast

from schemas.catalogue import Catalogue
from streams import rules
from streams.engine import peer_group
from streams.hours import local_day_hours
from streams.rules import Finding
from streams.underreporting import Episode, UnderreportingConfig, describe, evaluate, series


def _new_state() -> dict[str, Any]:
    return {"stores": {}, "latest": {}, "alerts": {}, "records": {}, "flushed": []}


class PeerEngine:
    def __init__(
        self, catalogue: Catalogue, config: UnderreportingConfig, groups: MutableMapping[str, dict[str, Any]]
    ) -> None:
        self.cfg = config
        self.groups = groups
        self.members: dict[str, list[str]] = {}
        self.by_id = {s.id: s for s in catalogue.stores}
        for store in catalogue.stores:
            self.members.setdefault(peer_group(store), []).append(store.id)

    def state(self, group: str) -> dict[str, Any]:
        state = self.groups.get(group)
        return state if state is not None and "stores" in state else _new_state()

    def apply(self, group: str, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Record one store-hour message; returns the alerts to emit."""
        if "day" not in message or "counts" not in message:
            return []  # an hourly-candidate message of the release before daily UNDERREPORTING: nothing to judge
        state = self.state(group)
        store_id, day = message["store_id"], message["day"]
        days = state["stores"].setdefault(store_id, {})
        days.setdefault(day, {})[str(message["hour_start"])] = {
            "usable": message["usable"],
            "counts": message["counts"],
        }
        latest = state["latest"].get(store_id)
        out: list[dict[str, Any]] = []
        if latest is None or day > latest:
            state["latest"][store_id] = day
            if latest is not None:
                out = self._evaluate(state, flush=False)  # the store's previous day(s) are complete now
        elif day < latest:
            out = self._evaluate(state, flush=False)  # a correction of a complete day
        self._prune(state)
        self.groups[group] = state
        return out

    def flush(self, group: str) -> list[dict[str, Any]]:
        """Judge every day of a group, the last ones included (end of a replay)."""
        state = self.groups.get(group)
        if state is None or "stores" not in state:
            return []
        out = self._evaluate(state, flush=True)
        self.groups[group] = state
        return out

    def _evaluate(self, state: dict[str, Any], *, flush: bool) -> list[dict[str, Any]]:
        days: dict[str, Mapping[str, Mapping[str, int]]] = {}
        categories: dict[str, str | None] = {}
        for store_id, store_days in state["stores"].items():
            latest = state["latest"].get(store_id, "")
            complete = sorted(d for d in store_days if flush or d < latest)
            store = self.by_id.get(store_id)
            profile_tz = store.timezone if store else None
            days[store_id] = cast(dict[str, Mapping[str, int]], series(store_days, complete, profile_tz, self.cfg))
            categories[store_id] = store.category if store else None
        episodes = evaluate(days, categories, self.cfg)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for episode in episodes:
            out += self._reconcile(state, episode, seen)
        horizon = min((min(d) for d in state["stores"].values() if d), default="")
        for aid, current in list(state["alerts"].items()):
            record = state["records"].get(aid)
            if current != "FIRING" or aid in seen or record is None or record["details"]["since"] < horizon:
                continue
            out.append(self._resolved(state, aid, "no longer departs after corrected figures", record["details"]))
        return out

    def _reconcile(self, state: dict[str, Any], episode: Episode, seen: set[str]) -> list[dict[str, Any]]:
        store = self.by_id.get(episode.store_id)
        tz = store.timezone if store else "UTC"
        first = episode.departures[0].since
        since_ms = local_day_hours(first, tz)[0]
        aid = self._same_incident(state, episode) or rules.alert_id(rules.UNDERREPORTING, episode.store_id, since_ms)
        seen.add(aid)
        message, observed, expected, details = describe(episode, self.cfg)
        out: list[dict[str, Any]] = []
        if state["alerts"].get(aid) is None and episode.resolved is None:
            # Only an ongoing episode pages; one that corrected figures reveal after it ended is history.
            fired_at = _day_end(episode.alarmed, tz)
            severity = "CRITICAL" if abs(float(details["departure"])) >= 0.4 else "WARNING"
            finding = Finding(rules.UNDERREPORTING, severity, observed, expected, message, details)
            emitted = rules.fire(
                state["alerts"],
                finding,
                store_id=episode.store_id,
                hour_start_ms=since_ms,
                fired_at_ms=fired_at,
                tenant_id=store.tenant_id if store else None,
                mall_id=store.mall_id if store else None,
            )
            for record in emitted:
                state["records"][aid] = record
            out += emitted
        if episode.resolved is not None and state["alerts"].get(aid) == "FIRING":
            out.append(self._resolved(state, aid, f"back to normal on {episode.resolved}", details))
        return out

    @staticmethod
    def _same_incident(state: dict[str, Any], episode: Episode) -> str | None:
        """The alert already raised for this store over an overlapping period (corrections move a CUSUM run's
        first day; it is still the same incident and keeps its alert)."""
        start, end = episode.departures[0].since, episode.resolved or "9999-12-31"
        for aid, record in state["records"].items():
            if record["store_id"] != episode.store_id:
                continue
            details = record["details"]
            if start <= details.get("resolved_on", "9999-12-31") and end >= details["since"]:
                return str(aid)
        return None

    def _resolved(self, state: dict[str, Any], aid: str, why: str, details: dict[str, str]) -> dict[str, Any]:
        record = dict(state["records"][aid])
        store = self.by_id.get(record["store_id"])
        tz = store.timezone if store else "UTC"
        resolved_on = details.get("resolved_on")
        record.update(
            state="RESOLVED",
            severity="INFO",
            message=f"UNDERREPORTING of {record['store_id']} since {details['since']}: {why}",
            details=dict(details),
            fired_at=_day_end(resolved_on, tz) if resolved_on else record["fired_at"],
        )
        state["alerts"][aid] = "RESOLVED"
        state["records"][aid] = record
        return record

    def _prune(self, state: dict[str, Any]) -> None:
        newest = max(state["latest"].values(), default="")
        if not newest:
            return
        from datetime import date, timedelta

        horizon = (date.fromisoformat(newest) - timedelta(days=self.cfg.keep_days)).isoformat()
        for store_days in state["stores"].values():
            for day in [d for d in store_days if d < horizon]:
                del store_days[day]
        for aid in [a for a, r in state["records"].items() if r["details"]["since"] < horizon]:
            del state["records"][aid]
            state["alerts"].pop(aid, None)


def _day_end(day: str, tz: str) -> int:
    """UTC ms of the end of a store-local day."""
    hours = local_day_hours(day, tz)
    return hours[-1] + 3_600_000
