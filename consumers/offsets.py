"""PartitionControl - checked synchronous offset commits and pause/resume of partitions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from shadow.errors import CommitError

if TYPE_CHECKING:
    from consumers.metrics import WorkerMetrics

logger = logging.getLogger(__name__)


class PartitionControl:
    """The worker's hold on its partitions: commits that raise CommitError unless the broker
    accepted them, and the set of partitions paused while their batch cannot be stored."""

    def __init__(self, consumer: Any, topic: str, metrics: WorkerMetrics) -> None:
        self.consumer = consumer
        self.topic = topic
        self.metrics = metrics
        self.paused: set[int] = set()

    def commit(self, partition: int, offset: int) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        try:
            done = self.consumer.commit(
                offsets=[TopicPartition(self.topic, partition, offset)], asynchronous=False
            )
        except KafkaException as exc:
            raise CommitError(self.topic, partition, exc.args[0].str()) from None
        for tp in done or []:
            if tp.error is not None:
                raise CommitError(self.topic, partition, tp.error.str())
        self._record_lag(partition, offset)

    def _record_lag(self, partition: int, committed: int) -> None:
        from confluent_kafka import TopicPartition

        _low, high = self.consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), cached=True
        )
        if high >= 0:
            self.metrics.commit_lag.labels(str(partition)).set(max(0, high - committed))

    def pause(self, partition: int) -> None:
        from confluent_kafka import TopicPartition

        if partition not in self.paused:
            self.consumer.pause([TopicPartition(self.topic, partition)])
            self.paused.add(partition)
            self.metrics.paused.set(len(self.paused))

    def resume(self, partition: int) -> None:
        from confluent_kafka import TopicPartition

        if partition in self.paused:
            self.consumer.resume([TopicPartition(self.topic, partition)])
            self.paused.discard(partition)
            self.metrics.paused.set(len(self.paused))
            logger.info("%s[%d] resumed", self.topic, partition)

    def forget(self, partition: int) -> None:
        """A partition is no longer ours (revoked or lost): librdkafka forgets its pause too."""
        self.paused.discard(partition)
        self.metrics.paused.set(len(self.paused))
