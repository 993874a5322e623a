"""The stream engine's state as typed records: what each key of a partition's and a store's state holds.

The state lives in Faust tables whose changelogs are JSON, so these are ``TypedDict`` s over the very keys
(short ones included) that the changelogs already hold: a worker restored from a changelog written before
the types existed reads the same objects. Positional lists stay lists (JSON arrays); their positions are
named below. Keys marked ``NotRequired`` are added the first time they are needed (older state lacks them).
"""

from typing import Any, NotRequired, TypedDict

__all__ = ["CameraScan", "FeedScan", "PartitionState", "SilenceWindow", "StoreState"]


class PartitionState(TypedDict):
    """``parts["p<partition>"]``: event-time progress and the hours of one input partition."""

    nt: int
    """Newest ticket event time seen in the partition (ms)."""
    nf: int
    """Newest camera frame event time seen in the partition (ms)."""
    scan: int
    """Event time up to which the silence scan ran (ms, whole minutes count)."""
    newest: int
    """Newest event time of either input (ms)."""
    wm: int
    """Watermark: the inputs' common progress less the allowed lateness (ms)."""
    forced: int
    """A watermark forced by wall-clock idleness or the end of a replay (ms; FOREVER closes everything)."""
    open: dict[str, int]
    """Open hours: hour key -> hour start (ms)."""
    closed: dict[str, int]
    """Hours closed in this batch (hour key -> start); the full set lives in the ``retained`` table."""
    pruned: NotRequired[int]
    """Watermark of the last retention pass (ms)."""
    dirty: list[str]
    """Hour keys with a live update held back by the throttle."""
    stores: list[str]
    """Stores seen in the partition (the silence scan visits them)."""
    last_wall: int
    """Wall-clock time of the last batch that counted something (ms)."""


FeedScan = list[Any]
"""``[silence start (ms), visitors since, fired, [entries per minute still within the dwell time]]``."""
CameraScan = list[Any]
"""``[silence start (ms), tickets since, fired]``."""
SilenceWindow = list[Any]
"""``[kind, camera id ('' for the till feed), silent since (ms), fired at (ms), hour start (ms), ended at (ms) or
None]``: the window a fired FEED_SILENT / CAMERA_SILENT covers."""


class LowHour(TypedDict):
    """A final store-hour below a drop's ratio, kept until the next hour is judged."""

    s: int
    """Hour start (ms)."""
    v: int
    net: float
    tx: int
    base: dict[str, Any]
    """Its :class:`streams.baselines.Baseline` as a dict."""


class StoreState(TypedDict):
    """``stores[store_id]``: one store's silence trackers and alert states."""

    first: int
    """Event time of the store's first record (ms)."""
    last_ticket: int | None
    """Event time of its newest ticket (ms)."""
    v_since: int
    """Entrance visitors since the last ticket."""
    last_frame: dict[str, int]
    """Camera id -> event time of its newest frame (ms)."""
    t_since: dict[str, int]
    """Camera id -> tickets since its last frame."""
    alerts: dict[str, str]
    """Alert id -> its last state (FIRING / RESOLVED): an alert fires once per incident."""
    windows: dict[str, SilenceWindow]
    """Fired silence alert id -> the window it covers."""
    roots: NotRequired[dict[str, dict[str, Any]]]
    """Alert id -> the alert record, for alerts that later symptoms are attached to (``related``)."""
    episodes: NotRequired[dict[str, list[Any]]]
    """SALES_DROP / TRAFFIC_DROP -> ``[root alert id, its hour start (ms), last hour attached to it (ms)]``: the
    drop incident going on, which the next hours' drops (and a till going quiet) attach to."""
    low: NotRequired[dict[str, LowHour]]
    """SALES_DROP / TRAFFIC_DROP -> the store's last final hour when it was low but not improbable alone (a drop
    over two hours is judged on both)."""
    pooled: NotRequired[dict[str, int]]
    """Alert id of a drop judged over two hours -> its last hour (ms): a revision of one hour does not clear it."""
    conv_ref: NotRequired[float | None]
    """The store's median conversion over recent final hours (the silence rules' expected sales rate)."""
    fs: NotRequired[FeedScan]
    """The till feed's silence scan."""
    cs: NotRequired[dict[str, CameraScan]]
    """Camera id -> its silence scan."""
    scan_at: NotRequired[int]
    """Event time up to which the store's silence scan ran (ms)."""
