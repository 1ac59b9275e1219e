"""ShadowWorker - consume the transaction topic, score every candidate, land Parquet, commit.

Delivery guarantee (DESIGN.md): a partition's offset is committed synchronously, only after the
object holding its batch exists; a batch's key depends only on its first offset; revoked
partitions are flushed and committed, lost ones dropped; while the store fails the partition is
paused, the worker keeps polling, and nothing is committed.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consumers.buffers import PartitionBuffer, PartitionBuffers
from consumers.flusher import Flusher
from consumers.ingest import Chunk, split_batch
from consumers.metrics import WorkerMetrics
from consumers.offsets import PartitionControl
from shadow.errors import ShadowError
from shadow.prediction_store import PredictionStore, chunk_keys, features_table, prediction_table
from shadow.redaction import Redactor

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


class ShadowWorker:
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
            store or open_store(settings.store), self.topic, self.conf.store_features
        )
        self.publish = publish
        # records from any producer may carry card data the tap would have caught
        self.guard = Redactor.downstream(settings.tap) if self.conf.store_features else None
        self.buffers = PartitionBuffers()
        self.flusher = Flusher(self._write)
        self.assigned: set[int] = set()
        self.member = False
        """In the group: assigned something, possibly nothing (more workers than partitions)."""
        self.last_turn = time.monotonic()
        self._next_lag = 0.0
        self._stopping = threading.Event()
        self.consumer: Any = None
        self.control: PartitionControl = PartitionControl(None, self.topic, self.metrics)
        self.dlq: DeadLetters | None = None
        if self.conf.predictions_topic and publish is None:
            from consumers.publisher import PredictionPublisher

            # best effort, not flushed before commits: the Parquet dataset is the record of truth
            self.publish = PredictionPublisher.from_settings(settings)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load the candidates, connect, subscribe."""
        from consumers.kafka import make_consumer, make_dead_letters

        self.candidates.maybe_reload()
        self.dlq = make_dead_letters(self.settings)
        self.consumer = make_consumer(self.settings, self.worker_id)
        self.control = PartitionControl(self.consumer, self.topic, self.metrics)
        self.consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
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
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

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
            self.publish.close()  # type: ignore[union-attr]
        logger.info("worker %s left the group", self.worker_id)

    def drain(self) -> None:
        """Finish every write in flight, then store and commit every buffer now."""
        for partition in sorted(set(self.flusher.partitions()) | set(self.buffers.partitions())):
            self._flush_final(partition)

    # -- the loop ----------------------------------------------------------------------------

    def step(self) -> int:
        """One turn: consume a batch, score it, flush what is due. Returns records consumed."""
        self.last_turn = time.monotonic()
        messages = self.consumer.consume(self.conf.batch_size, self.conf.poll_timeout_s)
        if messages:
            self._ingest(messages)
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
        return len(messages)

    def _ingest(self, messages: list[Any]) -> None:
        assert self.dlq is not None
        batch = split_batch(messages, self.topic, self.settings.tap.max_envelope_bytes)
        self.metrics.consumed.inc(batch.consumed)
        for message, error in batch.refused:
            self.dlq.send(self.topic, message, error)
            self.metrics.dlq.labels(error.reason).inc()
        results = self.candidates.score(batch.envelopes) if batch.envelopes else []
        scored_at_us = time.time_ns() // 1000
        for chunk in batch.chunks:
            self._buffer(chunk, results, scored_at_us)

    def _buffer(self, chunk: Chunk, results: list[Any], scored_at_us: int) -> None:
        buffer = self.buffers.for_partition(chunk.partition, chunk.first_offset)
        buffer.add_offsets(chunk.first_offset, chunk.last_offset, chunk.consumed)
        if not chunk.envelopes:
            return
        keys = chunk_keys(
            chunk.envelopes, chunk.offsets, chunk.partition, self.worker_id, scored_at_us
        )
        mine = [r.sliced(chunk.start, chunk.stop) for r in results]
        table = prediction_table(keys, chunk.envelopes, mine)
        features = features_table(keys, chunk.envelopes, self.guard.redact) if self.guard else None
        buffer.add_rows(table, features, chunk.envelopes[0].event_time)
        if self.publish is not None:
            self.publish(chunk.partition, table)

    # -- flush and commit --------------------------------------------------------------------

    def _write(self, buffer: PartitionBuffer) -> None:
        """Encode and put one partition batch (on the flusher's thread)."""
        if not buffer.tables:
            return
        started = time.perf_counter()
        self.writer.write(
            buffer.partition,
            buffer.first_offset,
            buffer.first_event_ms or 0,
            buffer.tables,
            buffer.features,
        )
        self.metrics.flush_seconds.observe(time.perf_counter() - started)

    def _finish_writes(self, now: float) -> None:
        for buffer, error in self.flusher.finished(now):
            if error is None:
                error = self._commit_stored(buffer)
            if error is None:
                self.flusher.release(buffer.partition)
                self.control.resume(buffer.partition)
            else:
                self._write_failed(buffer, error, now)

    def _commit_stored(self, buffer: PartitionBuffer) -> ShadowError | None:
        """Commit past a stored batch once its dead letters are acknowledged too."""
        assert self.dlq is not None
        try:
            self.dlq.settle(buffer.partition)
            # offsets only after the object exists: a crash before this line replays the batch
            # into the same key
            self.control.commit(buffer.partition, buffer.commit_offset)
        except ShadowError as exc:
            return exc
        logger.info(
            "%s[%d]@%d..%d stored and committed (%d records)",
            self.topic,
            buffer.partition,
            buffer.first_offset,
            buffer.last_offset,
            buffer.records,
        )
        return None

    def _write_failed(self, buffer: PartitionBuffer, error: BaseException, now: float) -> None:
        """Pause the partition, keep the batch, retry with backoff; nothing is committed."""
        if not isinstance(error, ShadowError):
            raise error  # a defect, not an outage: crash, and the batch is replayed
        self.metrics.flush_failures.inc()
        delay = buffer.failed(now)
        self.flusher.hold(buffer.partition)
        self.control.pause(buffer.partition)
        logger.warning(
            "%s[%d]@%d flush failed, paused, retry in %.2fs: %s",
            self.topic,
            buffer.partition,
            buffer.first_offset,
            delay,
            error,
        )

    def _flush_final(self, partition: int) -> None:
        """Revoke or close: finish the write in flight, then store and commit the rest now;
        after any failure everything left stays uncommitted, for the next owner to replay."""
        held, error = self.flusher.wait(partition)
        if held is not None and error is None:
            error = self._commit_stored(held)
        self.flusher.release(partition)
        buffer = self.buffers.pop(partition)
        if error is None and buffer is not None and buffer.records:
            try:
                self._write(buffer)
            except ShadowError as exc:
                error = exc
            else:
                error = self._commit_stored(buffer)
        if error is not None:
            self.metrics.flush_failures.inc()
            logger.error("%s[%d] left uncommitted for replay: %s", self.topic, partition, error)

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


if __name__ == "__main__":
    # run through the canonical modules (not __main__), so loggers have their real names
    from consumers.service import main

    main()
