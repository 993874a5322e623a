"""Expanding a Grafana panel's SQL as Grafana and the grafana-clickhouse-datasource plugin (v4) would.

Macros follow the plugin's pkg/macros/macros.go: ``$__timeFilter(c)`` -> ``c >= toDateTime(from) AND c <=
toDateTime(to)`` (seconds), the ``_ms`` forms with ``fromUnixTimestamp64Milli``, ``$__fromTime``,
``$__toTime``, ``$__dateFilter(c)`` with ``toDate('YYYY-MM-DD')``, ``$__timeInterval(c)`` ->
``toStartOfInterval(toDateTime(c), INTERVAL n second)`` and ``$__interval_s``. Template variables are
replaced first, as Grafana does: ``${v}``, ``$v``, ``[[v]]`` and ``${v:singlequote}`` (each value quoted,
comma-separated).
"""

from __future__ import annotations

import re
from datetime import datetime


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def interpolate(sql: str, variables: dict[str, list[str]]) -> str:
    def value(name: str, fmt: str | None) -> str:
        values = variables[name]
        if fmt == "singlequote":
            return ",".join(_quote(v) for v in values)
        if fmt not in (None, "raw"):
            raise ValueError(f"unsupported variable format {fmt!r}")
        return ",".join(values)

    sql = re.sub(r"\$\{(\w+)(?::(\w+))?\}", lambda m: value(m.group(1), m.group(2)), sql)
    sql = re.sub(r"\[\[(\w+)\]\]", lambda m: value(m.group(1), None), sql)
    return re.sub(r"\$(?!__)(\w+)", lambda m: value(m.group(1), None) if m.group(1) in variables else m.group(0), sql)


def expand_macros(sql: str, start: datetime, end: datetime, interval_s: int = 60) -> str:
    f, t = int(start.timestamp()), int(end.timestamp())
    fm, tm = int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    def one_arg(name: str, body: str) -> str:
        args = [a.strip() for a in body.split(",")]
        if len(args) != 1:
            raise ValueError(f"$__{name} expects 1 argument, got {len(args)}")
        c = args[0]
        return {
            "timeFilter": f"{c} >= toDateTime({f}) AND {c} <= toDateTime({t})",
            "timeFilter_ms": f"{c} >= fromUnixTimestamp64Milli({fm}) AND {c} <= fromUnixTimestamp64Milli({tm})",
            "dateFilter": f"{c} >= toDate('{start:%Y-%m-%d}') AND {c} <= toDate('{end:%Y-%m-%d}')",
            "timeInterval": f"toStartOfInterval(toDateTime({c}), INTERVAL {max(interval_s, 1)} second)",
        }[name]

    sql = re.sub(
        r"\$__(timeFilter_ms|timeFilter|dateFilter|timeInterval)\(([^()]*)\)", lambda m: one_arg(*m.groups()), sql
    )
    sql = sql.replace("$__fromTime_ms", f"fromUnixTimestamp64Milli({fm})").replace(
        "$__toTime_ms", f"fromUnixTimestamp64Milli({tm})"
    )
    sql = sql.replace("$__fromTime", f"toDateTime({f})").replace("$__toTime", f"toDateTime({t})")
    sql = sql.replace("$__interval_s", str(max(interval_s, 1)))
    left = re.search(r"\$__\w+", sql)
    if left:
        raise ValueError(f"unknown macro {left.group(0)}")
    return sql
