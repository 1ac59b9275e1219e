"""PartitionBuffer - what one partition consumed since its last commit, and when it is due."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyarrow as pa

MAX_BACKOFF_S = 5.0


@dataclass
class PartitionBuffer:
    """Scored rows of one partition since its committed offset.

    ``first_offset`` is the offset of the first record consumed after the last commit, good or
    dead-lettered: after a crash the group resumes exactly there, so a replayed batch gets the
    same key. ``first_event_ms`` comes from the first good record (the date= partition).
    """

    partition: int
    first_offset: int
    last_offset: int = -1
    first_event_ms: int | None = None
    records: int = 0
    tables: list[pa.Table] = field(default_factory=list)
    features: list[pa.Table] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    failures: int = 0
    retry_at: float = 0.0

    def add_offsets(self, first: int, last: int, count: int) -> None:
        """Record that offsets first..last (count records) were consumed into this buffer."""
        self.first_offset = min(self.first_offset, first)
        self.last_offset = max(self.last_offset, last)
        self.records += count

    def add_rows(self, table: pa.Table, features: pa.Table | None, first_event_ms: int) -> None:
        self.tables.append(table)
        if features is not None:
            self.features.append(features)
        if self.first_event_ms is None:
            self.first_event_ms = first_event_ms

    @property
    def commit_offset(self) -> int:
        """The offset to commit once this buffer is stored: the next one to read."""
        return self.last_offset + 1

    def due(self, now: float, flush_records: int, flush_seconds: float) -> bool:
        if self.records == 0 or now < self.retry_at:
            return False
        return self.records >= flush_records or now - self.started >= flush_seconds

    def failed(self, now: float) -> float:
        """Note a failed flush; returns the backoff before the next try (doubling, capped)."""
        self.failures += 1
        delay = min(MAX_BACKOFF_S, 0.25 * 2 ** (self.failures - 1))
        self.retry_at = now + delay
        return delay


class PartitionBuffers:
    """The open buffers of the partitions this worker is assigned, keyed by partition."""

    def __init__(self) -> None:
        self._buffers: dict[int, PartitionBuffer] = {}

    def for_partition(self, partition: int, first_offset: int) -> PartitionBuffer:
        buffer = self._buffers.get(partition)
        if buffer is None:
            buffer = self._buffers[partition] = PartitionBuffer(partition, first_offset)
        return buffer

    def get(self, partition: int) -> PartitionBuffer | None:
        return self._buffers.get(partition)

    def pop(self, partition: int) -> PartitionBuffer | None:
        return self._buffers.pop(partition, None)

    def due(self, now: float, flush_records: int, flush_seconds: float) -> list[PartitionBuffer]:
        return [b for b in self._buffers.values() if b.due(now, flush_records, flush_seconds)]

    def all(self) -> list[PartitionBuffer]:
        return [b for b in self._buffers.values() if b.records]

    def partitions(self) -> list[int]:
        return sorted(self._buffers)

    def __len__(self) -> int:
        return len(self._buffers)
