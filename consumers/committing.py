"""FlushAndCommit - the worker's write and commit steps: a partition batch is put whole, then
its offsets are committed; a failed write is retried whole, a failed commit alone.

Delivery guarantee (DESIGN.md): the offset past a batch is committed synchronously, only after
the batch's object exists and its dead letters are acknowledged; while the store or the commit
fails, the partition is paused and nothing past the batch is committed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from shadow.errors import CommitError, ShadowError

if TYPE_CHECKING:
    from consumers.buffers import PartitionBuffer, PartitionBuffers
    from consumers.dlq import DeadLetters
    from consumers.flusher import Flusher
    from consumers.metrics import WorkerMetrics
    from consumers.offsets import PartitionControl
    from shadow.prediction_store import PredictionStore

logger = logging.getLogger(__name__)


class FlushAndCommit:
    """Mixed into ShadowWorker: everything from a due buffer to its committed offset."""

    topic: str
    writer: PredictionStore
    buffers: PartitionBuffers
    flusher: Flusher
    control: PartitionControl
    dlq: DeadLetters | None
    metrics: WorkerMetrics

    def drain(self) -> None:
        """Finish every write in flight, then store and commit every buffer now."""
        for partition in sorted(set(self.flusher.partitions()) | set(self.buffers.partitions())):
            self._flush_final(partition)

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
            if error is not None:
                self._write_failed(buffer, error, now)
                continue
            error = self._commit_stored(buffer)
            if error is None:
                self.flusher.release(buffer.partition)
                self.control.resume(buffer.partition)
            else:
                self._commit_failed(buffer, error, now)

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

    def _commit_failed(self, buffer: PartitionBuffer, error: ShadowError, now: float) -> None:
        """The object exists but its commit (or a dead letter before it) failed: pause, keep
        the stored batch, retry only the commit with backoff; the object is not written again."""
        self.metrics.commit_failures.inc()
        delay = buffer.failed(now)
        self.flusher.hold(buffer.partition, stored=True)
        self.control.pause(buffer.partition)
        logger.warning(
            "%s[%d]@%d..%d stored, commit failed, paused, commit retry in %.2fs: %s",
            self.topic,
            buffer.partition,
            buffer.first_offset,
            buffer.last_offset,
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
        if isinstance(error, CommitError):
            # the object exists; a rebalance (or the broker) refused the offset: the next
            # owner replays into the same key. Not a store failure.
            self.metrics.commit_failures.inc()
            logger.warning(
                "%s[%d] commit refused on revoke, left for the next owner to replay: %s",
                self.topic,
                partition,
                error,
            )
        elif error is not None:
            self.metrics.flush_failures.inc()
            logger.error("%s[%d] left uncommitted for replay: %s", self.topic, partition, error)
