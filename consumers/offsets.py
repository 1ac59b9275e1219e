"""PartitionControl - checked synchronous offset commits and pause/resume of partitions."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from shadow.errors import CommitError

if TYPE_CHECKING:
    from consumers.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

LAG_TIMEOUT_S = 1.0
"""How long one lag refresh waits for the broker (on the consuming thread)."""


class PartitionControl:
    """The worker's hold on its partitions: commits that raise CommitError unless the broker
    accepted them, and the set of partitions paused while their batch cannot be stored."""

    def __init__(self, consumer: Any, topic: str, metrics: WorkerMetrics) -> None:
        self.consumer = consumer
        self.topic = topic
        self.metrics = metrics
        self.paused: set[int] = set()
        self.committed: dict[int, int] = {}

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
        self.committed[partition] = offset
        self._record_lag(partition, offset)

    def refresh_lag(self, partitions: set[int]) -> None:
        """Lag of every assigned partition from the broker's high watermark now, so the gauge
        keeps growing while nothing is committed (a stalled or paused worker). A partition
        never committed by this worker has its group offset asked; one the group never
        committed counts from the low watermark (auto.offset.reset is earliest)."""
        from confluent_kafka import KafkaException, TopicPartition

        unknown = [TopicPartition(self.topic, p) for p in sorted(partitions - set(self.committed))]
        try:
            for tp in self.consumer.committed(unknown, timeout=LAG_TIMEOUT_S) if unknown else []:
                if tp.error is None and tp.offset >= 0:
                    self.committed[tp.partition] = tp.offset
            for partition in sorted(partitions):
                tp = TopicPartition(self.topic, partition)
                low, high = self.consumer.get_watermark_offsets(tp, timeout=LAG_TIMEOUT_S)
                self._set_lag(partition, high, self.committed.get(partition, low))
        except KafkaException as exc:  # the broker is away: the last figures stand
            logger.debug("%s: lag not refreshed: %s", self.topic, exc.args[0].str())

    def _record_lag(self, partition: int, committed: int) -> None:
        from confluent_kafka import TopicPartition

        tp = TopicPartition(self.topic, partition)
        _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
        self._set_lag(partition, high, committed)

    def _set_lag(self, partition: int, high: int, committed: int) -> None:
        if high >= 0 and committed >= 0:
            lag = self.metrics.commit_lag.labels(self.topic, str(partition))
            lag.set(max(0, high - committed))

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
        """A partition is no longer ours (revoked or lost): librdkafka forgets its pause too,
        and its lag is the new owner's to report."""
        self.paused.discard(partition)
        self.metrics.paused.set(len(self.paused))
        self.committed.pop(partition, None)
        with contextlib.suppress(KeyError):
            self.metrics.commit_lag.remove(self.topic, str(partition))
