"""Commits of idempotently written batches (tillflow/kafka.py): which refusals a consumer goes on after."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tillflow.kafka import commit_can_be_skipped, commit_written


class RefusingConsumer:
    """Stands in for a confluent_kafka Consumer whose commit the group coordinator refuses."""

    def __init__(self, error: KafkaException | None) -> None:
        self.error = error
        self.committed: list[TopicPartition] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        if self.error is not None:
            raise self.error
        self.committed.extend(offsets)


def as_consumer(fake: RefusingConsumer) -> Consumer:
    return cast(Consumer, cast(Any, fake))


def test_a_commit_refused_because_the_group_changed_is_skipped_a_fenced_member_is_not() -> None:
    """After a broker restart a sink's commit came back ILLEGAL_GENERATION and the sink died (issue 12's chaos
    test); the batch is already written, so the sink goes on and reads it again (same rows)."""
    for code in (KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS):
        assert commit_can_be_skipped(KafkaException(KafkaError(code)))
    assert not commit_can_be_skipped(KafkaException(KafkaError(KafkaError.FENCED_INSTANCE_ID)))
    assert not commit_can_be_skipped(KafkaException("not a KafkaError"))


def test_commit_written_commits_the_next_offsets() -> None:
    consumer = RefusingConsumer(None)
    assert commit_written(as_consumer(consumer), [("t", 0, 11), ("t", 1, 3)], "a batch")
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.committed] == [("t", 0, 11), ("t", 1, 3)]


def test_commit_written_goes_on_after_a_rebalance_and_raises_when_fenced(caplog: pytest.LogCaptureFixture) -> None:
    stale = RefusingConsumer(KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION)))
    assert not commit_written(as_consumer(stale), [("t", 0, 11)], "a stored batch of alerts")
    assert "could not commit a stored batch of alerts" in caplog.text
    fenced = RefusingConsumer(KafkaException(KafkaError(KafkaError.FENCED_INSTANCE_ID)))
    with pytest.raises(KafkaException):
        commit_written(as_consumer(fenced), [("t", 0, 11)], "a batch")


def test_static_member_id_is_the_configured_one_else_group_at_host_on_the_local_stack_only() -> None:
    import socket

    from tillflow.kafka import group_instance_id

    assert group_instance_id("tillflow-worker", "worker-7", local=False) == "worker-7"
    assert group_instance_id("tillflow-worker", None, local=True) == f"tillflow-worker@{socket.gethostname()}"
    assert group_instance_id("tillflow-worker", None, local=False) is None
