"""A Faust worker whose agent does nothing: the floor of Faust's own per-record cost.

Run by ``bench.streams_throughput`` as ``python -m bench._faust_floor BOOTSTRAP APP_ID PREFIX PARTITIONS
stock|tillflow|batched DATADIR TOTAL``: the same input topics and at-least-once commits as ``tillflow worker``, but
no decoding, no tables and no output. ``stock``: Faust's aiokafka transport as released, the agent taking
events in batches (``take_events``); ``tillflow``: the same with the inline hand-off of streams/transport.py
alone; ``batched``: the transport the worker uses, one event per fetched batch of one partition. Once TOTAL
records went through, it prints ``FLOOR <records/s>`` (from its first record on) to stdout.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from schemas.topics import CAMERA_COUNTS, POS_TICKETS


def main(argv: list[str]) -> None:
    import faust

    from streams.transport import SCHEME, batch_topics, broker_urls

    bootstrap, app_id, prefix, partitions = argv[0], argv[1], argv[2], int(argv[3])
    mode = argv[4]
    scheme = "kafka" if mode == "stock" else SCHEME
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
    )
    inputs = app.topic(
        prefix + POS_TICKETS,
        prefix + CAMERA_COUNTS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    total, seen, started = int(argv[6]), [0], [0.0]

    def count(n: int) -> None:
        if not seen[0]:
            started[0] = time.perf_counter()
        seen[0] += n
        if seen[0] >= total > seen[0] - n:
            print(f"FLOOR {seen[0] / (time.perf_counter() - started[0]):.0f}", flush=True)

    if mode == "batched":
        batch_topics(app, [prefix + POS_TICKETS, prefix + CAMERA_COUNTS])

        @app.agent(inputs, name="noop")
        async def noop_batches(stream: Any) -> None:
            async for event in stream.noack().events():
                count(len(event.message.batch))
                await stream.ack(event)

    else:

        @app.agent(inputs, name="noop")
        async def noop(stream: Any) -> None:
            async for events in stream.take_events(2000, within=0.2):
                count(len(events))

    faust.Worker(app, loglevel="warn").execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
