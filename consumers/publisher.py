"""PredictionPublisher - the worker's per-transaction prediction records for the live monitor.

Best effort by design: the Parquet dataset is the record of truth. Records are produced
asynchronously (librdkafka batches them); a full local queue drops and counts instead of
blocking the worker loop, and nothing waits for delivery before the batch's offsets are
committed. A crash can therefore lose, or (after a replay) repeat, a few monitor records.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from shadow.envelope import (
    PREDICTION_RECORD_VERSION,
    CandidateScore,
    LiveScore,
    PredictionRecord,
    encode_prediction,
)
from shadow.errors import ConfigError
from shadow.predictions import ROLE_LIVE
from shadow.topics import ensure_predictions_topic

if TYPE_CHECKING:
    import pyarrow as pa

    from shadow.settings import Settings

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 120
"""A candidate's error text is cut to this length: the record is repeated per transaction."""

_COLUMNS = ["txn_id", "model_id", "role", "score", "decision", "latency_us", "error"]


def records_of(table: pa.Table) -> list[PredictionRecord]:
    """Long-format prediction rows (shadow.predictions schema) -> one record per transaction."""
    import pyarrow as pa

    rows = table.select(_COLUMNS).to_pydict()
    # epoch ms as ints: converting 10^4 timestamps to datetime objects is the slow part
    event_ms = table.column("event_time").cast(pa.int64()).to_pylist()
    live: dict[str, LiveScore] = {}
    when: dict[str, int] = {}
    candidates: dict[str, list[CandidateScore]] = {}
    for i, txn_id in enumerate(rows["txn_id"]):
        if txn_id not in when:
            when[txn_id] = event_ms[i]
            candidates[txn_id] = []
        latency = float(rows["latency_us"][i] or 0.0)
        score = rows["score"][i]
        if rows["role"][i] == ROLE_LIVE:
            live[txn_id] = LiveScore(
                rows["model_id"][i], float(score), rows["decision"][i], latency / 1000.0
            )
            continue
        error = rows["error"][i]
        if score is not None and not math.isfinite(score):
            score = None
        candidates[txn_id].append(
            CandidateScore(rows["model_id"][i], score, error and error[:MAX_ERROR_CHARS], latency)
        )
    return [
        PredictionRecord(PREDICTION_RECORD_VERSION, txn_id, when[txn_id], live[txn_id], found)
        for txn_id, found in candidates.items()
        if txn_id in live
    ]


class PredictionPublisher:
    """Worker hook for worker.predictions_topic: ``publisher(partition, rows)`` per scored chunk."""

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.published = 0
        self.dropped = 0
        self.failed = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> PredictionPublisher:
        """A publisher with its own producer (acks=1, lz4, bounded queue); creates the topic."""
        from confluent_kafka import Producer

        from shadow.clients import base_config

        topic = settings.worker.predictions_topic
        if not topic:
            raise ConfigError("worker.predictions_topic", "not set: there is nothing to publish")
        ensure_predictions_topic(settings, topic)
        config = base_config(settings.kafka)
        config.update(
            {
                "acks": 1,
                "linger.ms": 50,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 200_000,
                "queue.buffering.max.kbytes": 65_536,
                "message.timeout.ms": 60_000,
            }
        )
        return cls(Producer(config), topic)

    def __call__(self, partition: int, table: pa.Table) -> None:
        """Produce one record per transaction of the chunk; never blocks, never raises."""
        try:
            records = records_of(table)
        except Exception as exc:  # noqa: BLE001 - the monitor's feed must never stop the worker
            logger.error("prediction records of partition %d not built: %s", partition, exc)
            return
        self.send(records)

    def send(self, records: Iterable[PredictionRecord]) -> None:
        """Produce records as they are (asynchronously; a full queue drops and counts)."""
        for record in records:
            self._produce(record)
        self.producer.poll(0)

    def _produce(self, record: PredictionRecord) -> None:
        try:
            self.producer.produce(
                self.topic,
                encode_prediction(record),
                key=record.txn_id.encode(),
                timestamp=record.event_time,
                on_delivery=self._delivered,
            )
        except BufferError:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                logger.warning("%s: local queue full, %d records dropped", self.topic, self.dropped)
            return
        self.published += 1

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failed += 1
            if self.failed == 1 or self.failed % 10_000 == 0:
                logger.warning("%s: %d records not delivered: %s", self.topic, self.failed, error)

    def close(self, timeout: float = 5.0) -> int:
        """Deliver what is queued (at most timeout s); returns how many records stay undelivered."""
        left = self.producer.flush(timeout)
        if left:
            logger.warning("%s: %d prediction records left undelivered", self.topic, left)
        return left
