"""A worker that cannot make progress says so: stall detection and a dump of what every task waits on.

:class:`Stall` is the pure rule (no I/O, explicit times): an input partition is stalled when it has records
after its committed offset and that offset has not moved for ``after_s`` seconds. The agents' timer
feeds it and logs a warning with :func:`consumer_state` and :func:`task_stacks` once per stall
(streams/agents.py); ``kill -USR1 <worker>`` logs mode's own dump of every task at any time.
"""

from __future__ import annotations

import asyncio
import gc
import io
import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Stall:
    """Per input partition: stalled when it has records not committed and its committed offset has not moved
    for ``after_s`` seconds. ``observe`` returns the stalled partitions with the seconds each has waited."""

    after_s: float
    last: dict[Any, tuple[int, float]] = field(default_factory=dict)
    reported: set[Any] = field(default_factory=set)

    def observe(self, now: float, partitions: dict[Any, tuple[int, int]]) -> dict[Any, float]:
        """``partitions``: partition -> (committed offset, records after it)."""
        stalled: dict[Any, float] = {}
        for tp, (committed, waiting) in partitions.items():
            seen = self.last.get(tp)
            if seen is None or seen[0] != committed or waiting <= 0:
                self.last[tp] = (committed, now)
                self.reported.discard(tp)
                continue
            if now - seen[1] >= self.after_s:
                stalled[tp] = now - seen[1]
        for tp in set(self.last) - set(partitions):  # revoked
            del self.last[tp]
            self.reported.discard(tp)
        return stalled


def _awaiting(coro: Any, limit: int) -> list[Any]:
    """The frames of a suspended coroutine and of what it awaits, outermost first."""
    frames: list[Any] = []
    while coro is not None and len(frames) < limit:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "ag_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def task_stacks(limit: int = 16) -> str:
    """Every asyncio task of every event loop in this process (Faust runs the consumer in its own thread),
    with the stack it is suspended in."""
    out = io.StringIO()
    loops = [obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop)]
    for loop in loops:
        if loop.is_closed():
            continue
        try:
            tasks = asyncio.all_tasks(loop)
        except RuntimeError as exc:  # the set changed while it was read (another thread): skip this loop
            out.write(f"loop {id(loop):#x}: {exc}\n")
            continue
        out.write(f"=== event loop {id(loop):#x}: {len(tasks)} tasks\n")
        for task in sorted(tasks, key=lambda t: t.get_name()):
            out.write(f"--- {task.get_name()}\n")
            for frame in _awaiting(task.get_coro(), limit):
                code = frame.f_code
                out.write(f"    {code.co_filename}:{frame.f_lineno} {code.co_name}\n")
    return out.getvalue()


def consumer_state(app: Any) -> str:
    """What decides whether the consumer fetches: assignment, Faust's active/paused/buffered partitions,
    flow control, recovery, the producer buffer, and aiokafka's own paused set and positions."""
    consumer = app.consumer
    lines = []
    try:
        lines.append(f"assignment: {sorted(map(str, consumer.assignment()))}")
        lines.append(f"active: {sorted(map(str, consumer._active_partitions or ()))}")
        lines.append(f"paused: {sorted(map(str, consumer._paused_partitions))}")
        lines.append(f"buffered (stream queue full): {sorted(map(str, consumer._buffered_partitions))}")
        lines.append(f"flow_active={consumer.flow_active} in_recovery={app.in_recovery} rebalancing={app.rebalancing}")
        lines.append(f"read offsets: { {str(k): v for k, v in consumer._read_offset.items()} }")
        lines.append(f"committed: { {str(k): v for k, v in consumer._committed_offset.items()} }")
        lines.append(f"unacked messages: {len(consumer._unacked_messages)}")
        acked = {str(tp): (min(offsets), len(offsets)) for tp, offsets in list(consumer._acked.items()) if offsets}
        lines.append(f"acknowledged, not committed (lowest, count): {acked}")
        buffer = app.producer.buffer
        lines.append(f"producer buffer: {buffer.size} queued, {getattr(buffer, 'in_flight', '?')} in flight")
        inner = consumer._thread._ensure_consumer()
        lines.append(f"aiokafka paused: {sorted(map(str, inner.paused()))}")
        state = inner._subscription.subscription.assignment
        positions = {str(tp): state.state_value(tp).position for tp in state.tps}
        lines.append(f"aiokafka positions: {positions}")
    except Exception as exc:  # a diagnosis must never take the worker down
        lines.append(f"(state incomplete: {exc!r})")
    return "\n".join(lines)
