"""Second stage of UNDERREPORTING: confirm a store's own-history departures against its peers.

The hour stage sends, for every final or corrected store-hour, the store's candidate departures and its
ratios to its own medians, keyed by peer group (same mall and category). This stage keeps one state per
group: the messages of recent hours and the fired alerts. An hour of a group is evaluated once every peer
in the catalogue reported it, or once the group has seen an hour two hours later (a peer that was closed
or is lagging), or at the end of a replay; a correction re-evaluates it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from schemas.catalogue import Catalogue
from streams import alerts as rules
from streams.alerts import AlertConfig, Candidate
from streams.engine import peer_group
from streams.hours import HOUR_MS

KEEP_HOURS = 48


class PeerEngine:
    def __init__(self, catalogue: Catalogue, config: AlertConfig, groups: MutableMapping[str, dict[str, Any]]) -> None:
        self.cfg = config
        self.groups = groups
        self.members: dict[str, list[str]] = {}
        self.by_id = {s.id: s for s in catalogue.stores}
        for store in catalogue.stores:
            self.members.setdefault(peer_group(store), []).append(store.id)

    def apply(self, group: str, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Record one store-hour message; returns the alerts to emit."""
        state = self.groups.get(group) or {"hours": {}, "alerts": {}, "done": [], "newest": 0}
        hour = int(message["hour_start"])
        state["hours"].setdefault(str(hour), {})[message["store_id"]] = message
        state["newest"] = max(state["newest"], hour)
        out: list[dict[str, Any]] = []
        for key in sorted(state["hours"], key=int):
            h = int(key)
            members = state["hours"][key]
            complete = set(self.members.get(group, ())) <= set(members)
            if key in state["done"] and h != hour:
                continue
            if complete or state["newest"] >= h + 2 * HOUR_MS or key in state["done"]:
                out += self._evaluate(state, h)
                if key not in state["done"]:
                    state["done"].append(key)
        self._prune(state)
        self.groups[group] = state
        return out

    def flush(self, group: str) -> list[dict[str, Any]]:
        """Evaluate every pending hour of a group (end of a replay)."""
        state = self.groups.get(group)
        if state is None:
            return []
        out: list[dict[str, Any]] = []
        for key in sorted(state["hours"], key=int):
            if key not in state["done"]:
                out += self._evaluate(state, int(key))
                state["done"].append(key)
        self.groups[group] = state
        return out

    def _evaluate(self, state: dict[str, Any], hour: int) -> list[dict[str, Any]]:
        members = state["hours"][str(hour)]
        out: list[dict[str, Any]] = []
        for store_id in sorted(members):
            msg = members[store_id]
            store = self.by_id.get(store_id)
            peer_ratios: dict[str, list[float]] = {}
            for other_id, other in members.items():
                if other_id == store_id:
                    continue
                for metric, ratio in other["ratios"].items():
                    peer_ratios.setdefault(metric, []).append(ratio)
            cands = [Candidate(*c) for c in msg["candidates"]]
            finding = rules.peer_confirm(cands, peer_ratios, self.cfg)
            out += rules.reconcile(
                state["alerts"],
                store_id=store_id,
                hour_start_ms=hour,
                evaluated=[rules.UNDERREPORTING],
                findings=[finding] if finding else [],
                fired_at_ms=int(msg["fired_at"]),
                tenant_id=store.tenant_id if store else None,
                mall_id=store.mall_id if store else None,
            )
        return out

    @staticmethod
    def _prune(state: dict[str, Any]) -> None:
        horizon = state["newest"] - KEEP_HOURS * HOUR_MS
        for key in [k for k in state["hours"] if int(k) < horizon]:
            del state["hours"][key]
            if key in state["done"]:
                state["done"].remove(key)
        while len(state["alerts"]) > 2000:
            del state["alerts"][next(iter(state["alerts"]))]
