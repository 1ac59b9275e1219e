"""Ingest - a consumed batch -> validated envelopes grouped by partition, and refused records.

The one place the worker turns Kafka records into envelopes (through
shadow.envelope.decode_many: decode() of each record, at a batch's cost).
"""

from __future__ import annotations

import logging
import operator
from dataclasses import dataclass, field
from itertools import accumulate, groupby
from typing import Any

import numpy as np

from shadow.envelope import EVENT_TIME_RANGE, Envelope, decode_many
from shadow.errors import EnvelopeError

logger = logging.getLogger(__name__)

# C-level calls over a batch (confluent_kafka's Message and the tests' stand-ins alike)
_ERROR = operator.methodcaller("error")
_VALUE = operator.methodcaller("value")
_KEY = operator.methodcaller("key")
_PARTITION = operator.methodcaller("partition")
_OFFSET = operator.methodcaller("offset")


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
    errors = list(map(_ERROR, messages))
    if errors.count(None) != len(errors):
        for message, error in zip(messages, errors, strict=True):
            if error is not None:
                _log_error(message, topic)
        messages = [m for m, error in zip(messages, errors, strict=True) if error is None]
    decoded = decode_many(
        list(map(_VALUE, messages)), list(map(_KEY, messages)), max_bytes, event_times
    )
    partitions = list(map(_PARTITION, messages))
    offsets = list(map(_OFFSET, messages))
    if decoded.refused:
        return _one_by_one(messages, decoded.items, partitions, offsets)
    batch = Batch()
    for partition, index in _by_partition(partitions):
        chunk = Chunk(partition, 0)
        chunk.envelopes = _take(decoded.items, index)  # no refusal: every item is an Envelope
        chunk.offsets = _take(offsets, index)
        chunk.messages = _take(messages, index)
        chunk.first_offset, chunk.last_offset = chunk.offsets[0], chunk.offsets[-1]
        chunk.consumed = len(chunk.offsets)
        batch.chunks.append(chunk)
        _place(batch, chunk)
        batch.consumed += chunk.consumed
    return batch


def _by_partition(partitions: list[int]) -> list[tuple[int, slice | list[int]]]:
    """Each partition's positions in the batch, partitions in order of first appearance: a
    slice when its records come in one run (librdkafka hands over a fetch at a time)."""
    runs = [(p, len(list(group))) for p, group in groupby(partitions)]
    if len(runs) == len({p for p, _ in runs}):
        bounds = list(accumulate((count for _, count in runs), initial=0))
        return [(p, slice(bounds[i], bounds[i + 1])) for i, (p, _) in enumerate(runs)]
    spread = np.asarray(partitions)
    firsts = np.unique(spread, return_index=True)[1]
    return [
        (partitions[i], np.flatnonzero(spread == partitions[i]).tolist()) for i in sorted(firsts)
    ]


def _take(items: list[Any], index: slice | list[int]) -> list[Any]:
    if isinstance(index, slice):
        return items[index]
    return [items[i] for i in index]


def _one_by_one(
    messages: list[Any],
    items: list[Envelope | EnvelopeError],
    partitions: list[int],
    offsets: list[int],
) -> Batch:
    """split_batch record by record: some were refused, or partitions interleave."""
    batch = Batch()
    chunks: dict[int, Chunk] = {}
    for message, item, partition, offset in zip(messages, items, partitions, offsets, strict=True):
        chunk = chunks.get(partition)
        if chunk is None:
            chunk = chunks[partition] = Chunk(partition, offset)
        chunk.last_offset = offset
        chunk.consumed += 1
        if isinstance(item, EnvelopeError):
            batch.refused.append((message, item))
            continue
        chunk.envelopes.append(item)
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
