"""The day's chart as a PNG (matplotlib, no display): visitors as bars, conversion as a line, alerts marked."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo


def day_chart(
    title: str, hours: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]], timezone: str
) -> bytes:
    """PNG bytes. ``hours``: local_hour (ISO with offset), visitors, conversion (or None); ``alerts``: kind,
    hour_start (aware datetime), marked at their local hour. Deterministic: the same input, the same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [h["local_hour"][11:16] for h in hours]
    x = list(range(len(hours)))
    fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
    try:
        ax.bar(x, [h["visitors"] for h in hours], color="#9ecae1", label="visitors")
        ax.set_ylabel("visitors")
        ax.set_xticks(x, labels, rotation=45, fontsize=8)
        ax2 = ax.twinx()
        conv = [None if h["conversion"] is None else h["conversion"] * 100 for h in hours]
        ax2.plot(x, [float("nan") if c is None else c for c in conv], color="#d95f0e", marker="o", label="conversion")
        ax2.set_ylabel("conversion %")
        ax2.set_ylim(bottom=0)
        index = {label: i for i, label in enumerate(labels)}
        tz = ZoneInfo(timezone)
        marked = 0
        for a in alerts:
            at = index.get(a["hour_start"].astimezone(tz).strftime("%H:%M"))
            if at is None:
                continue
            ax.axvline(at, color="#cb181d", linestyle="--", linewidth=1)
            ax.annotate(str(a["kind"]), (at, 0), xytext=(2, 2 + 10 * (marked % 3)), textcoords="offset points",
                        color="#cb181d", fontsize=7, rotation=90)  # fmt: skip
            marked += 1
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)
