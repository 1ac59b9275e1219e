"""Ingest - a consumed batch -> validated envelopes grouped by partition, and refused records.

The one place the worker turns Kafka records into envelopes (through shadow.envelope.decode).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from shadow.envelope import EVENT_TIME_RANGE, Envelope, decode
from shadow.errors import EnvelopeError

logger = logging.getLogger(__name__)


@dataclass
class Chunk:
    """The records of one partition in a consumed batch; start:stop indexes the batch's
    envelopes (and so every model's scores)."""

    partition: int
    first_offset: int
    last_offset: int = -1
    consumed: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)
    start: int = 0
    stop: int = 0


@dataclass
class Batch:
    """A consumed batch: good envelopes in partition order, their chunks, refused records."""

    consumed: int = 0
    envelopes: list[Envelope] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    refused: list[tuple[Any, EnvelopeError]] = field(default_factory=list)

    def refuse(self, errors: dict[int, EnvelopeError]) -> None:
        """Move the envelopes at these indexes (of ``envelopes``) to the refused records."""
        if not errors:
            return
        self.envelopes = []
        for chunk in self.chunks:
            kept = []
            for i, message in enumerate(chunk.messages):
                error = errors.get(chunk.start + i)
                if error is None:
                    kept.append(i)
                else:
                    self.refused.append((message, error))
            chunk.envelopes = [chunk.envelopes[i] for i in kept]
            chunk.offsets = [chunk.offsets[i] for i in kept]
            chunk.messages = [chunk.messages[i] for i in kept]
            _place(self, chunk)


def _place(batch: Batch, chunk: Chunk) -> None:
    chunk.start = len(batch.envelopes)
    batch.envelopes.extend(chunk.envelopes)
    chunk.stop = len(batch.envelopes)


def split_batch(
    messages: list[Any],
    topic: str,
    max_bytes: int,
    event_times: tuple[int, int] = EVENT_TIME_RANGE,
) -> Batch:
    """Decode each record once; group the good ones by partition, keep the bad ones apart."""
    batch = Batch()
    chunks: dict[int, Chunk] = {}
    for message in messages:
        if message.error() is not None:
            _log_error(message, topic)
            continue
        partition, offset = message.partition(), message.offset()
        chunk = chunks.get(partition)
        if chunk is None:
            chunk = chunks[partition] = Chunk(partition, offset)
        chunk.last_offset = offset
        chunk.consumed += 1
        try:
            envelope = decode(message.value(), message.key(), max_bytes, event_times)
        except EnvelopeError as exc:
            batch.refused.append((message, exc))
            continue
        chunk.envelopes.append(envelope)
        chunk.offsets.append(offset)
        chunk.messages.append(message)
    for chunk in chunks.values():
        _place(batch, chunk)
        batch.consumed += chunk.consumed
    batch.chunks = list(chunks.values())
    return batch


def _log_error(message: Any, topic: str) -> None:
    from confluent_kafka import KafkaError

    error = message.error()
    if error.code() != KafkaError._PARTITION_EOF:
        logger.warning("%s[%s] consume error: %s", topic, message.partition(), error.str())
