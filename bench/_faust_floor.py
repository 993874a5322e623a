"""A Faust worker whose agent does nothing: the floor of Faust's own per-record cost.

Run by ``bench.streams_throughput`` as ``python -m bench._faust_floor BOOTSTRAP APP_ID PREFIX PARTITIONS
stock|tillflow|batched DATADIR``: the same input topics, the same batching (``take_events``) and at-least-once
commits as ``tillflow worker``, but no decoding, no tables and no output. ``stock`` uses Faust's aiokafka
transport as released; ``tillflow`` the consumer of streams/transport.py that the worker uses, one event per
record; ``batched`` the same with one event per fetched batch of one partition (streams_batched_transport).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from schemas.topics import CAMERA_COUNTS, POS_TICKETS


def main(argv: list[str]) -> None:
    import faust

    from streams.transport import SCHEME, Stream, batch_topics, broker_urls

    bootstrap, app_id, prefix, partitions = argv[0], argv[1], argv[2], int(argv[3])
    scheme = "kafka" if argv[4] == "stock" else SCHEME
    app = faust.App(
        app_id,
        broker=broker_urls(bootstrap),
        broker_consumer=broker_urls(bootstrap, scheme),
        processing_guarantee="at_least_once",
        topic_replication_factor=1,
        topic_partitions=partitions,
        web_enabled=False,
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        datadir=argv[5],
        Stream=faust.Stream if argv[4] == "stock" else Stream,
    )
    inputs = app.topic(
        prefix + POS_TICKETS,
        prefix + CAMERA_COUNTS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    if argv[4] == "batched":
        batch_topics(app, [prefix + POS_TICKETS, prefix + CAMERA_COUNTS])

    total = int(argv[6]) if len(argv) > 6 else 0
    seen = first = 0
    started = 0.0

    @app.agent(inputs, name="noop")
    async def noop(stream: Any) -> None:
        nonlocal seen, first, started
        async for events in stream.take_events(2000, within=0.2):
            taken = sum(len(getattr(e.message, "batch", None) or [None]) for e in events)
            if not started:  # timed from the first batch on, which is not counted (commits come too seldom)
                started, first = time.perf_counter(), taken
            seen += taken
            if total and seen >= total and seen > first:
                print(f"FLOOR {(seen - first) / (time.perf_counter() - started):.0f}", flush=True)

    faust.Worker(app, loglevel="warn").execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
