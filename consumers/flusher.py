"""Flusher - encodes and puts partition batches on a background thread, one per partition at a time.

The consumer's thread keeps consuming and scoring while a batch is written; it commits a
partition's offset itself, only after that partition's write has finished (DESIGN.md).
A failed write stays in its slot until retried, so later batches of the partition wait behind it
and offsets are committed in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from consumers.buffers import PartitionBuffer

logger = logging.getLogger(__name__)


@dataclass
class Slot:
    """A partition's batch being written (future set) or waiting to be retried (future None):
    its write again, or only its commit when ``stored`` (the object exists already)."""

    buffer: PartitionBuffer
    future: Future[None] | None
    stored: bool = False


class Flusher:
    """At most one batch per partition in flight; writes run on one background thread."""

    def __init__(self, write: Callable[[PartitionBuffer], None]) -> None:
        self._write = write
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow-flush")
        self._slots: dict[int, Slot] = {}

    def busy(self, partition: int) -> bool:
        return partition in self._slots

    def submit(self, buffer: PartitionBuffer) -> None:
        self._slots[buffer.partition] = Slot(buffer, self._pool.submit(self._write, buffer))

    def finished(self, now: float) -> list[tuple[PartitionBuffer, BaseException | None]]:
        """Writes that ended since the last call, with their error; retries those now due (a
        stored batch whose commit failed comes back as ended, unwritten, to commit again)."""
        ended: list[tuple[PartitionBuffer, BaseException | None]] = []
        for slot in list(self._slots.values()):
            if slot.future is None:
                if now < slot.buffer.retry_at:
                    continue
                if slot.stored:
                    ended.append((slot.buffer, None))
                else:
                    slot.future = self._pool.submit(self._write, slot.buffer)
            elif slot.future.done():
                ended.append((slot.buffer, slot.future.exception()))
        return ended

    def hold(self, partition: int, stored: bool = False) -> None:
        """Keep a batch in its slot; finished() retries it once its retry_at passes: its write,
        or, ``stored``, only its commit."""
        slot = self._slots[partition]
        slot.future = None
        slot.stored = slot.stored or stored

    def release(self, partition: int) -> PartitionBuffer | None:
        slot = self._slots.pop(partition, None)
        return slot.buffer if slot else None

    def wait(self, partition: int) -> tuple[PartitionBuffer | None, BaseException | None]:
        """The partition's batch once its write ended (None if none); a held one is an error
        unless it is stored (then only its commit is left)."""
        slot = self._slots.get(partition)
        if slot is None:
            return None, None
        if slot.stored:
            return slot.buffer, None
        if slot.future is None:
            return slot.buffer, RuntimeError("its last write failed")
        return slot.buffer, slot.future.exception()

    def partitions(self) -> list[int]:
        return sorted(self._slots)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
