"""ShadowWorker - consume the transaction topic, score every candidate, land Parquet, commit.

Delivery guarantee (DESIGN.md): a partition's offset is committed synchronously, only after the
object holding its batch exists; a batch's key depends only on its first offset; revoked
partitions are flushed and committed, lost ones dropped; while the store fails the partition is
paused, the worker keeps polling, and nothing is committed.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consumers.buffers import PartitionBuffers
from consumers.chunk_rows import ChunkRows
from consumers.committing import FlushAndCommit
from consumers.flusher import Flusher
from consumers.ingest import Chunk, split_batch
from consumers.metrics import WorkerMetrics
from consumers.offsets import PartitionControl
from shadow.errors import EnvelopeError, ScoringStopped
from shadow.kafka_logs import KAFKA_LOG
from shadow.prediction_store import PredictionStore
from shadow.redaction import Redactor
from shadow.scorer import FeatureFrame

if TYPE_CHECKING:
    import pyarrow as pa

    from consumers.candidates import CandidateSet
    from consumers.dlq import DeadLetters
    from shadow.objectstore import ObjectStore
    from shadow.settings import Settings

logger = logging.getLogger(__name__)

Publisher = Callable[[int, "pa.Table"], None]
"""Hook for worker.predictions_topic: called with (partition, rows of a scored chunk)."""

LAG_REFRESH_S = 10.0
"""How often the lag gauge of every assigned partition is read again from the broker."""


class ShadowWorker(FlushAndCommit):
    """One worker process of the consumer group `worker.group_id`."""

    def __init__(
        self,
        settings: Settings,
        candidates: CandidateSet | None = None,
        store: ObjectStore | None = None,
        publish: Publisher | None = None,
    ) -> None:
        from shadow.objectstore import open_store

        self.settings = settings
        self.conf = settings.worker
        self.topic = settings.kafka.topic
        self.worker_id = self.conf.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.metrics = WorkerMetrics()
        if candidates is None:
            from consumers.registry_source import registry_candidates

            candidates = registry_candidates(settings, self.metrics)
        candidates.metrics = candidates.metrics or self.metrics
        self.candidates = candidates
        self.writer = PredictionStore(
            store or open_store(settings.store, self.worker_id),
            self.topic,
            self.conf.store_features,
        )
        self.publish = publish
        # records from any producer may carry card data the tap would have caught
        guard = Redactor.downstream(settings.tap) if self.conf.store_features else None
        self.rows = ChunkRows(
            self.worker_id, self.conf.store_features, guard.redact if guard else None
        )
        self.buffers = PartitionBuffers()
        self.flusher = Flusher(self._write)
        self.assigned: set[int] = set()
        self.member = False
        """In the group: assigned something, possibly nothing (more workers than partitions)."""
        self.last_turn = time.monotonic()
        self._next_lag = 0.0
        self._stopping = threading.Event()
        self.started = threading.Event()
        """Set once the worker has subscribed (before it, a signal just ends the start-up)."""
        self.consumer: Any = None
        self.control: PartitionControl = PartitionControl(None, self.topic, self.metrics)
        self.dlq: DeadLetters | None = None
        if self.conf.predictions_topic and publish is None:
            from consumers.publisher import PredictionPublisher

            # best effort, not flushed before commits: the Parquet dataset is the record of truth
            self.publish = PredictionPublisher.from_settings(settings)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Sweep stale temp files, load the candidates, connect, subscribe."""
        from consumers.kafka import make_consumer, make_dead_letters

        sweep = getattr(self.writer.store, "sweep_temp", None)
        if sweep is not None:
            sweep()
        self.candidates.maybe_reload()
        self.attach(make_consumer(self.settings, self.worker_id), make_dead_letters(self.settings))

    def attach(self, consumer: Any, dlq: DeadLetters) -> None:
        """Subscribe through this consumer and refuse records to this DLQ (start() makes the
        real ones; tests hand in their own)."""
        self.dlq = dlq
        self.consumer = consumer
        self.control = PartitionControl(self.consumer, self.topic, self.metrics)
        self.consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.started.set()
        logger.info("worker %s subscribed to %s", self.worker_id, self.topic)

    def run(self) -> None:
        """Consume until stop() (or SIGTERM/SIGINT via install_signal_handlers), then drain."""
        if self.consumer is None:
            self.start()
        try:
            while not self._stopping.is_set():
                self.step()
        finally:
            self.close()

    @property
    def paused(self) -> set[int]:
        """Partitions paused because their batch could not be stored yet."""
        return self.control.paused

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the worker within worker.shutdown_seconds (consumers.shutdown)."""
        from consumers.shutdown import Shutdown

        Shutdown(self.stop, self.started, self.conf.shutdown_seconds).install()

    def close(self) -> None:
        """Graceful end: finish every write, flush and commit every buffer, leave the group."""
        if self.consumer is None:
            return
        self.drain()
        self.flusher.close()
        self.consumer.close()
        self.consumer = None
        self.member = False
        if self.dlq is not None:
            self.dlq.close()
        if hasattr(self.publish, "close"):
            # a Publisher is any callable; the PredictionPublisher also has close()
            self.publish.close()  # type: ignore[union-attr]
        logger.info("worker %s left the group", self.worker_id)

    # -- the loop ----------------------------------------------------------------------------

    def step(self) -> int:
        """One turn: consume a batch, score it, flush what is due. Returns records consumed."""
        self.last_turn = time.monotonic()
        messages = self.consumer.consume(self.conf.batch_size, self.conf.poll_timeout_s)
        if messages:
            try:
                self._ingest(messages)
            except ScoringStopped:
                # nothing of this batch was buffered: its offsets stay uncommitted for replay
                logger.info("shutting down: the batch being scored is left for replay")
                return 0
        now = time.monotonic()
        if now >= self._next_lag:
            self._next_lag = now + LAG_REFRESH_S
            self.control.refresh_lag(self.assigned)
        self._finish_writes(now)
        for buffer in self.buffers.due(now, self.conf.flush_records, self.conf.flush_seconds):
            if not self.flusher.busy(buffer.partition):
                self.buffers.pop(buffer.partition)
                self.flusher.submit(buffer)
        self.candidates.maybe_reload(now)
        KAFKA_LOG.tick()
        return len(messages)

    def _ingest(self, messages: list[Any]) -> None:
        batch = split_batch(
            messages, self.topic, self.settings.tap.max_envelope_bytes, self.conf.event_times
        )
        self.metrics.consumed.inc(batch.consumed)
        frame = FeatureFrame.of(batch.envelopes)
        wrong = self.candidates.check(frame)  # feature types the models cannot take
        if wrong:
            batch.refuse(wrong)
            frame = FeatureFrame.of(batch.envelopes)
        for message, error in batch.refused:
            self._refuse(message, error)
        results = self.candidates.score(batch.envelopes, frame) if batch.envelopes else []
        scored_at_us = time.time_ns() // 1000
        for chunk in batch.chunks:
            self._buffer(chunk, results, scored_at_us)

    def _refuse(self, message: Any, error: EnvelopeError) -> None:
        assert self.dlq is not None
        self.dlq.send(self.topic, message, error)
        self.metrics.dlq.labels(error.reason).inc()

    def _buffer(self, chunk: Chunk, results: list[Any], scored_at_us: int) -> None:
        """Rows first, offsets after: a chunk whose rows cannot be built never counts as
        consumed; one record that cannot be stored goes to the DLQ, the others are kept."""
        try:
            rows = self.rows.build(chunk, results, scored_at_us)
        except Exception as exc:  # noqa: BLE001 - a defect met by some input: isolate it
            logger.error(  # the type only: an Arrow message may quote a value
                "%s[%d]@%d..%d rows failed (%s); storing them one by one",
                self.topic,
                chunk.partition,
                chunk.first_offset,
                chunk.last_offset,
                type(exc).__name__,
            )
            rows = self.rows.build_each(chunk, results, scored_at_us, self._refuse)
        buffer = self.buffers.for_partition(chunk.partition, chunk.first_offset)
        buffer.add_offsets(chunk.first_offset, chunk.last_offset, chunk.consumed)
        if rows is None:
            return
        table, features, first_event_ms = rows
        buffer.add_rows(table, features, first_event_ms)
        if self.publish is not None:
            self.publish(chunk.partition, table)

    # -- rebalance callbacks (run inside consume(), on this thread) --------------------------

    def _on_assign(self, _consumer: Any, partitions: list[Any]) -> None:
        # called with an empty list too when the group leaves this member nothing to read
        self.member = True
        self.assigned.update(tp.partition for tp in partitions)
        self.metrics.assigned.set(len(self.assigned))
        logger.info("assigned %s", _names(partitions))

    def _on_revoke(self, _consumer: Any, partitions: list[Any]) -> None:
        """Flush and commit what the revoked partitions hold; if that fails, drop it uncommitted."""
        logger.info("revoked %s", _names(partitions))
        for tp in partitions:
            self._flush_final(tp.partition)
            self._forget(tp.partition)

    def _on_lost(self, _consumer: Any, partitions: list[Any]) -> None:
        """Partitions lost (session timed out): their buffers are dropped, never committed."""
        logger.warning("lost %s: dropping their buffers uncommitted", _names(partitions))
        self.member = False  # out of the group until the next assignment
        for tp in partitions:
            self.flusher.release(tp.partition)  # a write still running is never committed
            self._forget(tp.partition)
            if self.dlq is not None:
                self.dlq.drop(tp.partition)

    def _forget(self, partition: int) -> None:
        self.assigned.discard(partition)
        self.metrics.assigned.set(len(self.assigned))
        self.buffers.pop(partition)
        self.control.forget(partition)

    # -- operations --------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        report = self.candidates.health()
        ok = self.consumer is not None and all(m["ok"] for m in report.values())
        return ok, {"worker_id": self.worker_id, "ready": ok, "models": report}

    def models(self) -> list[dict[str, Any]]:
        return self.candidates.report()


def _names(partitions: list[Any]) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
