"""The stream processor's core, free of Faust: hour state, watermarks, closing, corrections and alerts.

:class:`Engine` works on three mappings that the Faust app backs with tables (plain dicts in tests and in
the batch tools):

- ``hours``: ``store|zone|hour_start`` -> accumulator (streams.accumulators), with its dedupe ids;
- ``stores``: ``store_id`` -> silence trackers, fired alerts and a compact history of final hours;
- ``parts``: ``p<partition>`` -> the partition's newest event time, watermark, open and closed hours.

Tickets and camera counts of one store share a partition (co-partitioned input topics), so everything a
store-hour needs lives in that partition's state. Wall-clock time (``now_ms``) is always an argument.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, MutableMapping
from dataclasses import asdict, dataclass, field, replace
from statistics import median
from typing import Any

from schemas.catalogue import Catalogue, Store
from streams import availability, rules
from streams.accumulators import Acc, add_frame, add_ticket, compact, hour_key, hourly_record, new_hour
from streams.availability import complete_share, open_minutes
from streams.baselines import DAY_MS, Baseline, baseline, history_entry, prune
from streams.hours import HOUR_MS, hour_start, local_hour_iso, local_weekday_hour
from streams.rules import AlertConfig, Finding
from streams.silence import FOREVER, SilenceDetection
from streams.state import LowHour, PartitionState, StoreState
from streams.underreporting import UnderreportingConfig, hour_counts
from tillflow.errors import ContractError

TICKET = "ticket"
FRAME = "frame"
HISTORY_DAYS = 35


class Rejected(ContractError):
    """An event the engine cannot place (unknown store, older than retention); goes to the dead-letter topic."""


@dataclass(frozen=True)
class StreamConfig:
    lateness_ms: int = 600_000
    live_throttle_ms: int = 2_000
    idle_close_ms: int = 30_000
    hour_retention_ms: int = 48 * HOUR_MS
    """Closed hours are kept in full this long behind the watermark..."""
    closed_retention_ms: int = 35 * DAY_MS
    """...then compact (ticket ids hashed) up to this age, so a late record still corrects them."""
    stream_skew_ms: int | None = HOUR_MS
    """How far one input (tickets or counts) may lag the other before the watermark stops waiting for it.
    None: always wait for both (replays, where the topics are read at different speeds)."""
    alerts: AlertConfig = field(default_factory=AlertConfig)
    underreporting: UnderreportingConfig = field(default_factory=UnderreportingConfig)


@dataclass
class Output:
    conversions: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    peers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(peer group, message) for the underreporting stage: one per final or corrected store-hour."""
    rejects: list[tuple[int, str]] = field(default_factory=list)
    """(index of the event in the batch, reason)."""
    duplicates: int = 0
    late: int = 0
    """Events counted into an hour that had already closed (each one makes a corrected final record)."""
    suppressed: list[tuple[str, str]] = field(default_factory=list)
    """(symptom kind, cause) of each finding not paged because a root alert or a data gap explains it."""
    closed: int = 0
    """Hours (store and zone) emitted final for the first time."""
    corrected: int = 0
    """Final hours emitted again with a higher revision."""

    def extend(self, other: Output) -> None:
        self.conversions += other.conversions
        self.alerts += other.alerts
        self.peers += other.peers
        self.rejects += other.rejects
        self.suppressed += other.suppressed
        self.duplicates += other.duplicates
        self.late += other.late
        self.closed += other.closed
        self.corrected += other.corrected


UNUSABLE_FLAGS = frozenset({"NO_CAMERA_DATA", "NO_POS_DATA", availability.CAMERA_MISSING})
"""Hours with these flags are left out of the underreporting stage's daily sums."""


def peer_group(store: Store) -> str:
    """Stores judged together for underreporting: a mall (peers are picked inside it), a street store alone."""
    return f"{store.mall_id}|" if store.mall_id else f"-|{store.id}"


def event_time_ms(kind: str, record: dict[str, Any]) -> int:
    value = record["occurred_at"] if kind == TICKET else record["frame_ts"]
    return value if isinstance(value, int) else int(value.timestamp() * 1000)


class Engine(SilenceDetection):
    """Applies batches of decoded events of one partition and returns what to emit."""

    def __init__(
        self,
        catalogue: Catalogue,
        config: StreamConfig,
        hours: MutableMapping[str, Acc],
        stores: MutableMapping[str, StoreState],
        parts: MutableMapping[str, PartitionState],
        history: MutableMapping[str, list[dict[str, Any]]] | None = None,
        retained: MutableMapping[str, dict[str, int]] | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.history: MutableMapping[str, list[dict[str, Any]]] = history if history is not None else {}
        self.retained: MutableMapping[str, dict[str, int]] = retained if retained is not None else {}
        self.cfg = config
        self.hours = hours
        self.stores = stores
        self.parts = parts
        self.by_id = {s.id: s for s in catalogue.stores}
        self.cameras = {s.id: [c.id for c in catalogue.cameras_of(s.id)] for s in catalogue.stores}
        self._restated: list[tuple[str, int, int]] = []
        """(store, since, until) of silences fired or resolved in this batch: their final hours are emitted again."""
        self.entrances = {
            s.id: [c.id for c in catalogue.cameras_of(s.id) if c.zone_id is None] for s in catalogue.stores
        }

    # -- state access (read through a per-batch cache, written back once per batch) --

    def _part(self, partition: int) -> PartitionState:
        part = self.parts.get(f"p{partition}")
        if part is None:
            part = {
                "nt": 0,
                "nf": 0,
                "scan": 0,
                "newest": 0,
                "wm": 0,
                "forced": 0,
                "open": {},
                "closed": {},  # hours closed in this batch; the full set lives in ``retained``
                "pruned": 0,
                "dirty": [],
                "stores": [],
                "last_wall": 0,
            }
        return part

    def _store(self, cache: dict[str, StoreState], store_id: str, ts: int) -> StoreState:
        st = cache.get(store_id)
        if st is None:
            st = self.stores.get(store_id)
            if st is None:
                st = {
                    "first": ts,
                    "last_ticket": None,
                    "v_since": 0,
                    "last_frame": {},
                    "t_since": {},
                    "alerts": {},
                    "windows": {},
                }
            cache[store_id] = st
        return st

    # -- public API --

    def apply(self, partition: int, events: Iterable[tuple[str, dict[str, Any]]], now_ms: int) -> Output:
        """Count a batch of (TICKET | FRAME, decoded record) of one partition, then close, emit and alert."""
        out = Output()
        part = self._part(partition)
        touched: dict[str, Acc] = {}
        stores: dict[str, StoreState] = {}
        threshold = max(part["wm"], part["forced"])
        oldest = part["wm"] - max(self.cfg.closed_retention_ms, self.cfg.hour_retention_ms)
        for i, (kind, rec) in enumerate(events):
            store = self.by_id.get(rec["store_id"])
            if store is None:
                out.rejects.append((i, f"store {rec['store_id']!r} is not in the catalogue"))
                continue
            reason = store.currency_problem(rec.get("currency")) if kind == TICKET else None
            if reason is not None:
                out.rejects.append((i, reason))
                continue
            ts = event_time_ms(kind, rec)
            start = hour_start(ts, store.timezone)
            if start + HOUR_MS <= oldest:
                out.rejects.append(
                    (
                        i,
                        f"event time {ts} is older than the {self.cfg.closed_retention_ms / DAY_MS:g}-day "
                        "retention of closed hours; recompute its hours with `tillflow backfill`",
                    )
                )
                continue
            zone = rec.get("zone_id") if kind == FRAME else None
            key = hour_key(store.id, zone, start)
            acc = touched.get(key)
            if acc is None:
                acc = self._open_hour(part, key, store, start, threshold, zone)
                touched[key] = acc
            counted = add_ticket(acc, rec) if kind == TICKET else add_frame(acc, rec)
            if not counted:
                out.duplicates += 1
                continue
            acc["dirty"] = True
            if acc["closed"]:
                out.late += 1
                if kind == TICKET:  # the minute's POS data arrived after its hour closed: delayed
                    acc["pd"] = acc.get("pd", 0) | 1 << min(max((ts - start) // 60_000, 0), 59)
            if ts > part["newest"]:
                part["newest"] = ts
            if kind == TICKET:
                part["nt"] = max(part["nt"], ts)
            else:
                part["nf"] = max(part["nf"], ts)
            if kind == FRAME:
                base_key = hour_key(store.id, None, start)
                base = touched.get(base_key) if zone is not None else acc
                if base is None:
                    base = self._open_hour(part, base_key, store, start, threshold)
                    touched[base_key] = base
                bit = 1 << min(max((ts - start) // 60_000, 0), 59)
                base["mc"][rec["camera_id"]] = base["mc"].get(rec["camera_id"], 0) | bit
            st = self._store(stores, store.id, ts)
            if kind == TICKET:
                self._track_ticket(st, store, ts, out)
            else:
                self._track_frame(st, store, rec, ts, out)
        if touched:
            part["last_wall"] = now_ms
        self._finish(partition, part, touched, stores, now_ms, out)
        return out

    def _open_hour(
        self, part: PartitionState, key: str, store: Store, start: int, threshold: int, zone: str | None = None
    ) -> Acc:
        """The hour's accumulator, new if there is none. An open hour is always in its partition's open hours:
        the tables' changelog records of a batch are not written atomically, and a worker killed mid-flush kept
        an hour without its partition's entry listing it; read again, its events were duplicates, it was never
        registered and never closed, and its final never emitted (test_restart_busy: 20 store-hours)."""
        acc = self.hours.get(key)
        if acc is None:
            return self._new_hour(part, key, store, start, threshold, zone)
        if not acc["closed"] and key not in part["open"]:
            part["open"][key] = start
        return acc

    @staticmethod
    def _new_hour(
        part: PartitionState, key: str, store: Store, start: int, threshold: int, zone: str | None = None
    ) -> Acc:
        acc = new_hour(store.id, zone, start, store.timezone)
        if start + HOUR_MS <= threshold:
            acc["closed"] = True
            part["closed"][key] = start
        else:
            part["open"][key] = start
        return acc

    def progress(self, part: PartitionState) -> int:
        """Event time up to which both inputs of a partition are complete (apart from late events).

        The slower of tickets and counts, unless it lags the faster by more than ``stream_skew_ms`` (a feed
        that went silent must not hold every hour open). An input never seen in the partition is ignored,
        except with ``stream_skew_ms`` None, where nothing progresses until both were seen.
        """
        nt, nf = part["nt"], part["nf"]
        skew = self.cfg.stream_skew_ms
        if skew is None:
            return min(nt, nf)
        if not nt or not nf:
            return max(nt, nf)
        return max(min(nt, nf), max(nt, nf) - skew)

    def tick(self, partition: int, now_ms: int, close_all: bool = False) -> Output:
        """Timer: flush throttled live updates and close hours of a partition that went quiet.

        A partition that had events but none for ``idle_close_ms`` of wall-clock time closes hours whose end
        plus the allowed lateness is past ``now_ms`` (and, when its event time runs ahead of the wall clock,
        as in a time-compressed simulation, every open hour); ``close_all`` (end of a replay) closes all.
        """
        out = Output()
        part = self._part(partition)
        if close_all:
            part["forced"] = FOREVER
        elif part["last_wall"] and now_ms - part["last_wall"] >= self.cfg.idle_close_ms:
            part["forced"] = max(part["forced"], now_ms - self.cfg.lateness_ms)
            if part["newest"] > now_ms and part["open"]:
                # Event time ahead of the wall clock (a time-compressed simulation): the wall clock will not
                # pass these hours soon, so a quiet partition closes what it has open.
                part["forced"] = max(part["forced"], max(part["open"].values()) + HOUR_MS)
        self._finish(partition, part, {}, {}, now_ms, out)
        return out

    # -- internals --

    def _finish(
        self,
        partition: int,
        part: PartitionState,
        touched: dict[str, Acc],
        stores: dict[str, StoreState],
        now_ms: int,
        out: Output,
    ) -> None:
        """After a batch or a timer tick: move the watermark, close the hours it passed, emit final and due
        live records, judge alerts, apply retention, then write the batch's state back once."""
        part["wm"] = max(part["wm"], self.progress(part) - self.cfg.lateness_ms)
        for store_id in stores:
            if store_id not in part["stores"]:
                part["stores"].append(store_id)
        self._close_passed_hours(part, touched)
        self._take_due_live_updates(part, touched, now_ms)
        self._scan_silences(part, touched, stores, out)
        self._restate(touched)
        finals = self._emit(part, touched, stores, now_ms, out)
        self._judge_alerts(part, touched, stores, finals, out)
        self._retain(partition, part, touched)
        for key, acc in touched.items():
            self.hours[key] = acc
        for store_id, st in stores.items():
            self.stores[store_id] = st
        self.parts[f"p{partition}"] = part

    def _close_passed_hours(self, part: PartitionState, touched: dict[str, Acc]) -> None:
        """Close every open hour the watermark has passed, oldest first (baselines see earlier hours)."""
        threshold = max(part["wm"], part["forced"])
        for key, start in sorted(part["open"].items(), key=lambda kv: kv[1]):
            if start + HOUR_MS <= threshold:
                acc = touched.get(key) or self.hours.get(key)
                if acc is None:
                    del part["open"][key]
                    continue
                touched[key] = acc
                acc["closed"] = True
                acc["dirty"] = True
                del part["open"][key]
                part["closed"][key] = start

    def _take_due_live_updates(self, part: PartitionState, touched: dict[str, Acc], now_ms: int) -> None:
        """Live updates are throttled by wall clock: the held-back ones that are due join this batch's hours."""
        waiting: list[str] = []
        for key in part["dirty"]:
            if key not in touched:
                acc = self.hours.get(key)
                if acc is None or not acc["dirty"]:
                    continue
                if acc["closed"] or now_ms - acc.get("emitted", 0) >= self.cfg.live_throttle_ms:
                    touched[key] = acc
                else:
                    waiting.append(key)
        part["dirty"] = waiting

    def _restate(self, touched: dict[str, Acc]) -> None:
        """Final store-hours whose POS availability changed (a silence fired over them, or late tickets resolved
        one) are emitted again, as corrections carrying the new ``pos_complete_share``."""
        for store_id, since, until in self._restated:
            store = self.by_id[store_id]
            h = hour_start(since, store.timezone)
            while h < until:
                key = hour_key(store_id, None, h)
                acc = touched.get(key) or self.hours.get(key)
                if acc is not None and acc.get("final"):
                    acc["dirty"] = True
                    touched[key] = acc
                h = hour_start(h + HOUR_MS, store.timezone)
        self._restated.clear()

    def _emit(
        self, part: PartitionState, touched: dict[str, Acc], stores: dict[str, StoreState], now_ms: int, out: Output
    ) -> list[Acc]:
        """The conversion records of the changed hours (final, corrected or live); the store hours made final."""
        finals: list[Acc] = []
        for key, acc in sorted(touched.items(), key=lambda kv: kv[1]["start"]):
            if not acc["dirty"]:
                continue
            store = self.by_id[acc["store"]]
            if acc["closed"]:
                if acc.get("final"):
                    acc["rev"] += 1
                    out.corrected += 1
                else:
                    out.closed += 1
                acc["final"] = True
                acc["dirty"] = False
                acc["emitted"] = now_ms
                out.conversions.append(self._record(acc, store, True, now_ms, self._cached(stores, store.id)))
                if acc["zone"] is None:
                    finals.append(acc)
            elif now_ms - acc.get("emitted", 0) >= self.cfg.live_throttle_ms:
                acc["dirty"] = False
                acc["emitted"] = now_ms
                out.conversions.append(self._record(acc, store, False, now_ms, self._cached(stores, store.id)))
            else:
                part["dirty"].append(key)
        return finals

    def _judge_alerts(
        self,
        part: PartitionState,
        touched: dict[str, Acc],
        stores: dict[str, StoreState],
        finals: list[Acc],
        out: Output,
    ) -> None:
        """Each final store-hour's alerts (the silences were scanned before), then the early sales drops."""
        for acc in finals:
            store = self.by_id[acc["store"]]
            self._final_alerts(acc, store, self._store(stores, store.id, acc["start"]), part, out)
        self._early_sales_drop(part, touched, stores, out)

    def _scan_silences(
        self, part: PartitionState, touched: dict[str, Acc], stores: dict[str, StoreState], out: Output
    ) -> None:
        """Silences first: a store-hour's record (its POS minutes) and its sales and traffic findings are made
        knowing the silent feeds and cameras that explain them (one incident, one page)."""
        safe = self.progress(part)
        if safe // 60_000 > part["scan"] // 60_000:
            part["scan"] = safe
            for store_id in list(part["stores"]):
                known = self.by_id.get(store_id)
                if known is not None and (store_id in stores or store_id in self.stores):
                    self._scan_silence(known, self._store(stores, store_id, safe), touched, safe, out)

    def _cached(self, stores: dict[str, StoreState], store_id: str) -> StoreState | None:
        return stores.get(store_id) or self.stores.get(store_id)

    def _retain(self, partition: int, part: PartitionState, touched: dict[str, Acc]) -> None:
        """Retention of the partition's closed hours (the ``retained`` table)."""
        cfg = self.cfg
        # Retention: closed hours behind the event-time watermark are made compact after hour_retention_ms
        # and forgotten after closed_retention_ms. The set of closed hours is only read and written when hours
        # close or an hour of event time passed.
        compact_before = part["wm"] - cfg.hour_retention_ms
        horizon = part["wm"] - max(cfg.closed_retention_ms, cfg.hour_retention_ms)
        due = part["wm"] // HOUR_MS > part.get("pruned", 0) // HOUR_MS
        if part["closed"] or due:
            pk = f"p{partition}"
            retained = dict(self.retained.get(pk) or {})
            retained.update(part["closed"])
            part["closed"] = {}
            if due:
                part["pruned"] = part["wm"]
                for key, start in list(retained.items()):
                    if start + HOUR_MS <= horizon:
                        del retained[key]
                        touched.pop(key, None)
                        if key in self.hours:
                            del self.hours[key]
                    elif start + HOUR_MS <= compact_before:
                        acc = touched.get(key) or self.hours.get(key)
                        if acc is not None and not acc.get("compact"):
                            compact(acc)
                            touched[key] = acc
            self.retained[pk] = retained

    def _record(
        self, acc: Acc, store: Store, is_final: bool, now_ms: int, st: StoreState | None = None
    ) -> dict[str, Any]:
        area = store.area_m2
        if acc["zone"] is not None:
            try:
                area = store.zone(acc["zone"]).area_m2
            except KeyError:
                area = 0.0
        record = hourly_record(
            acc,
            area_m2=area,
            mall_id=store.mall_id,
            category=store.category,
            tenant_id=store.tenant_id,
            currency=store.currency,
            is_final=is_final,
            updated_at_ms=now_ms,
        )
        if acc["zone"] is None:
            availability.apply_to_record(
                record,
                acc["mc"],
                self.entrances[store.id],
                open_minutes(store, acc["start"]),
                self._pos_missing(st, acc["start"]) if st is not None else 0,
                acc.get("pd", 0),
            )
        return record

    @staticmethod
    def _pos_missing(st: StoreState, start: int) -> int:
        """Minutes of the hour inside a FIRING FEED_SILENT window: the till feed was silent (POS missing)."""
        mask = 0
        for aid, window in st["windows"].items():
            if window[0] == rules.FEED_SILENT and st["alerts"].get(aid) == "FIRING":
                until = window[5] if len(window) > 5 and window[5] is not None else FOREVER
                mask |= availability.minutes_within(start, window[2], until)
        return mask

    def _explained(self, st: StoreState, acc: Acc, record: dict[str, Any]) -> bool:
        """A store-hour whose figures rest on incomplete data: a data flag, an entrance-camera gap, a silence."""
        if any(flag in UNUSABLE_FLAGS for flag in record["quality_flags"]):
            return True
        share = record.get("complete_share")
        if share is not None and share < self.cfg.alerts.traffic_min_complete:
            return True
        end = acc["start"] + HOUR_MS
        return bool(
            self._silences(st, rules.FEED_SILENT, acc["start"], end)
            or self._silences(st, rules.CAMERA_SILENT, acc["start"], end)
        )

    def camera_complete(self, acc: Acc, store: Store) -> float | None:
        """Share of the store-hour's open minutes in which every entrance camera sent a frame."""
        return complete_share(acc["mc"], self.entrances[store.id], open_minutes(store, acc["start"]))

    def _final_alerts(self, acc: Acc, store: Store, st: StoreState, part: PartitionState, out: Output) -> None:
        """Sales and traffic drops of a final (or corrected) hour, then history and the peer message."""
        record = self._record(acc, store, True, 0, st)
        weekday, hour = local_weekday_hour(acc["start"], store.timezone)
        hist = [e for e in self.history.get(store.id) or [] if e["s"] != acc["start"]]
        edge = self._edge_hour(store, weekday, hour)
        base = baseline(hist, acc["start"], weekday, hour, acc["v"])
        if base is not None and edge and base.method != "same_weekday":
            base = None  # opening/closing hours differ from the day's average: only their own history counts
        findings: list[Finding] = []
        symptoms: list[Finding] = []
        complete = self.camera_complete(acc, store)
        if base is not None:
            traffic = rules.traffic_drop(acc["v"], base, self.cfg.alerts)
            if traffic is not None and complete is not None and complete < self.cfg.alerts.traffic_min_complete:
                # No frames is not zero visitors: the camera gap (CAMERA_SILENT, or the hour's data flag) is the
                # incident, not the footfall.
                self._suppress(st, store, acc["start"], traffic, rules.CAMERA_SILENT, "", out)
                symptoms.append(traffic)
            elif traffic is not None:
                findings.append(traffic)
            else:
                sales = rules.sales_drop(acc["net"], acc["v"], base, self.cfg.alerts, transactions=acc["tx"])
                # A silence overlapping the hour, or starting in the next one (a failing till's onset), explains it.
                if sales is not None and self._silences(
                    st, rules.FEED_SILENT, acc["start"], acc["start"] + 2 * HOUR_MS
                ):
                    self._suppress(st, store, acc["start"], sales, rules.FEED_SILENT, "", out)
                    symptoms.append(sales)
                elif sales is not None:
                    findings.append(sales)
        for finding in list(findings):
            if self._continues(st, store, acc["start"], finding, out):
                findings.remove(finding)
                symptoms.append(finding)
        pooled = st.get("pooled") or {}
        emitted = rules.reconcile(
            st["alerts"],
            store_id=store.id,
            hour_start_ms=acc["start"],
            # A drop judged over two hours is not cleared by a revision of one of them judged alone.
            evaluated=[
                k
                for k in (rules.SALES_DROP, rules.TRAFFIC_DROP)
                if rules.alert_id(k, store.id, acc["start"]) not in pooled
            ],
            findings=findings,
            fired_at_ms=max(part["newest"], acc["start"] + HOUR_MS),
            tenant_id=store.tenant_id,
            mall_id=store.mall_id,
        )
        self._remember_drops(st, emitted)
        out.alerts += emitted
        clean = not findings and not symptoms and not self._explained(st, acc, record)
        self._two_hour_drops(acc, store, st, base if clean else None, part, out)
        entry = history_entry(record, weekday, hour)
        hist.append(entry)
        hist.sort(key=lambda e: e["s"])
        hist = prune(hist, acc["start"], HISTORY_DAYS)
        self.history[store.id] = hist
        conv = [e["conv"] for e in hist if e["conv"] is not None and e["v"] >= 20]
        st["conv_ref"] = median(conv) if len(conv) >= 3 else None
        # The underreporting stage sums usable hours per day: an hour another alert (or a suppressed symptom)
        # explains, or whose camera or POS data is incomplete, would look like a departure that is not one.
        usable = clean
        out.peers.append(
            (
                peer_group(store),
                {
                    "store_id": store.id,
                    "hour_start": acc["start"],
                    "day": record["local_hour"][:10],
                    "revision": acc["rev"],
                    "usable": usable,
                    "counts": hour_counts(acc),
                },
            )
        )
        self._trim_alerts(st)

    def _two_hour_drops(
        self, acc: Acc, store: Store, st: StoreState, base: Baseline | None, part: PartitionState, out: Output
    ) -> None:
        """SALES_DROP / TRAFFIC_DROP over two hours in a row that are each low (:func:`rules.low`) but not
        improbable alone: judged on their sums (an evening at 30 % of 27 visitors an hour is 2.6 standard
        deviations in one hour, 3.7 over two). The alert is the first hour's; ``base`` None (an hour with a
        finding or on incomplete data) ends any run."""
        acfg = self.cfg.alerts
        low: dict[str, LowHour] = st.setdefault("low", {})
        before = hour_start(acc["start"] - 1, store.timezone)
        for kind in (rules.TRAFFIC_DROP, rules.SALES_DROP):
            observed = acc["v"] if kind == rules.TRAFFIC_DROP else acc["net"]
            if kind in low and acc["start"] < low[kind]["s"]:
                continue  # a correction of an older hour: the run of the newest hours stays as it is
            prev = low.pop(kind, None)
            if base is None or not rules.low(kind, observed, base, acfg):
                continue
            if prev is not None and prev["s"] == before and prev["base"]["method"] == base.method:
                both = rules.pooled([Baseline(**prev["base"]), base])
                visitors = prev["v"] + acc["v"]
                finding = (
                    rules.traffic_drop(visitors, both, acfg)
                    if kind == rules.TRAFFIC_DROP
                    else rules.sales_drop(
                        prev["net"] + acc["net"], visitors, both, acfg, transactions=prev["tx"] + acc["tx"]
                    )
                )
                if finding is not None:
                    self._fire_two_hours(finding, prev["s"], acc["start"], store, st, part, out)
                    continue
            low[kind] = {"s": acc["start"], "v": acc["v"], "net": acc["net"], "tx": acc["tx"], "base": asdict(base)}

    def _fire_two_hours(
        self, finding: Finding, first: int, last: int, store: Store, st: StoreState, part: PartitionState, out: Output
    ) -> None:
        """Page a two-hour drop as the alert of its first hour (or attach it to what explains it)."""
        span = f"{local_hour_iso(first, store.timezone)[11:16]}-{local_hour_iso(last + HOUR_MS, store.timezone)[11:16]}"
        finding = replace(
            finding,
            message=f"{span}: {finding.message}",
            details={**finding.details, "hours": "2", "last_hour": local_hour_iso(last, store.timezone)},
        )
        if finding.kind == rules.SALES_DROP and self._silences(st, rules.FEED_SILENT, first, last + 2 * HOUR_MS):
            self._suppress(st, store, first, finding, rules.FEED_SILENT, "", out)
            return
        if self._continues(st, store, first, finding, out):
            return
        emitted = rules.fire(
            st["alerts"],
            finding,
            store_id=store.id,
            hour_start_ms=first,
            fired_at_ms=max(part["newest"], last + HOUR_MS),
            tenant_id=store.tenant_id,
            mall_id=store.mall_id,
        )
        self._remember_drops(st, emitted)
        for record in emitted:
            st.setdefault("pooled", {})[record["alert_id"]] = last
            st["episodes"][record["kind"]][2] = last
        out.alerts += emitted

    def _early_sales_drop(
        self, part: PartitionState, touched: dict[str, Acc], stores: dict[str, StoreState], out: Output
    ) -> None:
        now = self.progress(part)
        acfg = self.cfg.alerts
        for acc in touched.values():
            if acc["closed"] or acc["zone"] is not None:
                continue
            fraction = (now - acc["start"]) / HOUR_MS
            if not acfg.early_fraction <= fraction < 1.0:
                continue
            store = self.by_id[acc["store"]]
            st = self._store(stores, store.id, now)
            weekday, hour = local_weekday_hour(acc["start"], store.timezone)
            base = baseline(self.history.get(store.id) or [], acc["start"], weekday, hour, acc["v"])
            if base is None or base.method != "same_weekday" or self._edge_hour(store, weekday, hour):
                # Revenue per visitor so far is biased low (people who just came in have not paid yet), and in
                # the opening and last hours sales do not spread evenly over the hour: a projection from part
                # of the hour is only made on the same hour of past weeks; otherwise the close decides.
                continue
            finding = rules.sales_drop(acc["net"], acc["v"], base, acfg, fraction, acc["tx"])
            if finding is not None and self._ticket_gap(st, acc["start"], now):
                continue  # the till may be silent rather than the sales low: the hour's final evaluation decides
            if finding is not None and not self._continues(st, store, acc["start"], finding, out):
                emitted = rules.fire(
                    st["alerts"],
                    finding,
                    store_id=store.id,
                    hour_start_ms=acc["start"],
                    fired_at_ms=now,
                    tenant_id=store.tenant_id,
                    mall_id=store.mall_id,
                )
                self._remember_drops(st, emitted)
                out.alerts += emitted

    def _continues(self, st: StoreState, store: Store, hour: int, finding: Finding, out: Output) -> bool:
        """A SALES_DROP or TRAFFIC_DROP in the hour right after an hour of the same FIRING drop (or of its
        continuation) is the same incident going on: attached to the first hour's alert, not paged again."""
        episode = (st.get("episodes") or {}).get(finding.kind)
        if episode is None or st["alerts"].get(episode[0]) != "FIRING":
            return False
        root_hour, last = episode[1], episode[2]
        if root_hour < hour <= last:
            return True  # already attached (the early evaluation, then the final one)
        if hour <= root_hour or hour_start(hour - 1, store.timezone) != last:
            return False
        episode[2] = hour
        self._suppress(st, store, hour, finding, finding.kind, "", out, roots=[episode[0]])
        return True

    @staticmethod
    def _remember_drops(st: StoreState, emitted: list[dict[str, Any]]) -> None:
        """Keep fired SALES_DROP / TRAFFIC_DROP alerts as roots that the next hours' drops attach to."""
        for record in emitted:
            if record["state"] == "FIRING" and record["kind"] in (rules.SALES_DROP, rules.TRAFFIC_DROP):
                st.setdefault("roots", {})[record["alert_id"]] = record
                st.setdefault("episodes", {})[record["kind"]] = [
                    record["alert_id"],
                    record["hour_start"],
                    record["hour_start"],
                ]

    def _suppress(
        self,
        st: StoreState,
        store: Store,
        hour: int,
        symptom: Finding,
        cause: str,
        cam: str,
        out: Output,
        roots: list[str] | None = None,
    ) -> None:
        """Page nothing for ``symptom``: attach it as ``related`` to the FIRING root alert(s) that explain it
        (the root is re-emitted with the list in its details; a re-emitted FIRING alert pages no one again),
        or, without a root alert (a camera gap too short or too quiet to fire), count it as explained by the
        hour's data flag. Either way it counts in ``tillflow_streams_alerts_suppressed_total``."""
        if roots is None:
            roots = self._silences(st, cause, hour, hour + HOUR_MS, cam or None)
        out.suppressed.append((symptom.kind, cause if roots else "DATA_GAP"))
        related_entry = {
            "kind": symptom.kind,
            "alert_id": rules.alert_id(symptom.kind, store.id, hour),
            "hour": local_hour_iso(hour, store.timezone),
            "observed": symptom.observed,
            "expected": symptom.expected,
        }
        for aid in roots:
            root = (st.get("roots") or {}).get(aid)
            if root is None:
                continue
            details = dict(root["details"])
            related = json.loads(details.get("related", "[]"))
            if any(r["alert_id"] == related_entry["alert_id"] for r in related):
                continue
            related.append(related_entry)
            details["related"] = json.dumps(related, separators=(",", ":"))
            details["suppressed"] = str(len(related))
            root = dict(root, details=details)
            st["roots"][aid] = root
            out.alerts.append(root)

    @staticmethod
    def _edge_hour(store: Store, weekday: int, hour: int) -> bool:
        """The local hour a store opens in, or the last hour it is open (from the catalogue)."""
        hours = store.hours_on(weekday)
        if hours is None or store.opening_hours is None:
            return False
        last = (hours.close.hour * 60 + hours.close.minute - 1) // 60
        return hour in (hours.open.hour, last)


__all__ = ["DAY_MS", "FRAME", "TICKET", "Engine", "Output", "Rejected", "StreamConfig", "event_time_ms", "peer_group"]
