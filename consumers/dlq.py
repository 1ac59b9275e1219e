"""DeadLetters - refused records to `<topic>.dlq` with why and where from, acknowledged before
the offset past them is committed.

The DLQ never stops the worker: an original larger than the producer may send is truncated to
fit (the detail header says so and ``shadow-dlq-original-bytes`` gives its size), and one the
broker still refuses as too large is halved again; a record the producer cannot take now (queue
full, broker away, any produce error) is kept and sent again by ``settle``, which raises
DeadLetterError meanwhile so that nothing past it is committed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from shadow.card_numbers import mask_card_numbers
from shadow.envelope import (
    DLQ_DETAIL,
    DLQ_OFFSET,
    DLQ_ORIGINAL_BYTES,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_SCRUBBED,
    DLQ_TOPIC,
)
from shadow.errors import DeadLetterError, EnvelopeError

logger = logging.getLogger(__name__)

_DETAIL_MAX = 300
MAX_KEY_BYTES = 1024
"""A longer key is cut to this (the DLQ has one partition: the key only labels the record)."""
HEADROOM = 16 * 1024
"""Bytes of a produce request kept for the key, the headers and the record's framing."""
DEFAULT_MAX_BYTES = 1_000_000
"""librdkafka's default message.max.bytes."""
_TOO_LARGE = ("MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD")


@dataclass(frozen=True)
class DeadLetter:
    """A refused record as it will be produced to the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    detail: str = ""
    original_bytes: int = 0

    def fitted(self, limit: int) -> DeadLetter:
        """This letter with its value cut to ``limit`` bytes, and the detail saying so."""
        value = self.value or b""
        if len(value) <= limit:
            return self
        note = f"; value truncated to {limit} of {self.original_bytes} bytes (DLQ size limit)"
        detail = (self.detail[: _DETAIL_MAX - len(note)] + note).encode("utf-8", "replace")
        headers = [(k, detail if k == DLQ_DETAIL else v) for k, v in self.headers]
        headers = [h for h in headers if h[0] != DLQ_ORIGINAL_BYTES]
        headers.append((DLQ_ORIGINAL_BYTES, str(self.original_bytes).encode()))
        return replace(self, value=value[:limit], headers=headers)


class DeadLetters:
    """Produces refused records; tracks, per source partition, those not yet acknowledged."""

    def __init__(
        self, producer: Any, topic: str, max_bytes: int = DEFAULT_MAX_BYTES, scrub: bool = True
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.limit = max(0, max_bytes - HEADROOM)
        self.scrub = scrub
        """Mask card numbers in the values (tap.card_guard is not warn)."""
        self._pending: dict[int, int] = defaultdict(int)
        self._failed: dict[int, list[DeadLetter]] = defaultdict(list)

    def send(self, source_topic: str, message: Any, error: EnvelopeError) -> None:
        partition, offset = message.partition(), message.offset()
        key, value = message.key(), message.value()
        headers = [
            (DLQ_REASON, error.reason.encode()),
            (DLQ_DETAIL, error.detail[:_DETAIL_MAX].encode("utf-8", "replace")),
            (DLQ_TOPIC, source_topic.encode()),
            (DLQ_PARTITION, str(partition).encode()),
            (DLQ_OFFSET, str(offset).encode()),
        ]
        masked = 0
        if self.scrub and value:
            # before anything else touches the bytes: a cut through a PAN would hide it
            value, masked = mask_card_numbers(value)
        if masked:
            headers.append((DLQ_SCRUBBED, str(masked).encode()))
        if key is not None and len(key) > MAX_KEY_BYTES:
            key = key[:MAX_KEY_BYTES]
        size = len(value or b"")
        letter = DeadLetter(partition, offset, key, value, headers, error.detail, size)
        logger.warning(
            "%s[%d]@%d refused: %s%s",
            source_topic,
            partition,
            offset,
            error.reason,
            f" ({masked} card number(s) masked in the dead letter)" if masked else "",
        )
        self._produce(letter.fitted(self.limit))

    def settle(self, partition: int, timeout: float = 10.0) -> None:
        """Return once every refused record of the partition is acknowledged; failed ones are
        sent again and DeadLetterError raised, so the caller commits nothing yet."""
        if not self._pending.get(partition) and not self._failed.get(partition):
            return
        self.producer.flush(timeout)
        failed = self._failed.pop(partition, [])
        for letter in failed:
            self._produce(letter)
        left = len(self._failed.get(partition, [])) + self._pending.get(partition, 0)
        if failed or left:
            raise DeadLetterError(self.topic, f"{max(left, len(failed))} records not acknowledged")

    def drop(self, partition: int) -> None:
        """Forget a lost partition's failed records: its next owner refuses them again."""
        self._failed.pop(partition, None)

    def close(self, timeout: float = 10.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            logger.warning("%d dead letters not acknowledged at close", left)

    def _produce(self, letter: DeadLetter) -> None:
        """Hand the letter to the producer; what it cannot take now waits in _failed."""
        from confluent_kafka import KafkaException

        full = 0
        while True:
            try:
                self._enqueue(letter)
                return
            except BufferError:  # the local queue is full: serve deliveries once, then keep it
                full += 1
                if full > 1:
                    break
                self.producer.poll(0.5)
            except KafkaException as exc:
                if _code_name(exc.args[0]) not in _TOO_LARGE or not letter.value:
                    logger.warning(
                        "dead letter of partition %d offset %d kept to retry: %s",
                        letter.partition,
                        letter.offset,
                        exc.args[0],
                    )
                    break
                letter = _halved(letter)  # cut to nothing at last: it ends
        self._failed[letter.partition].append(letter)

    def _enqueue(self, letter: DeadLetter) -> None:
        def delivered(err: Any, _msg: Any) -> None:
            self._pending[letter.partition] -= 1
            if err is not None:
                again = _halved(letter) if _code_name(err) in _TOO_LARGE else letter
                self._failed[letter.partition].append(again)

        self.producer.produce(
            self.topic,
            value=letter.value,
            key=letter.key,
            headers=letter.headers,
            on_delivery=delivered,
        )
        self._pending[letter.partition] += 1
        self.producer.poll(0)


def _halved(letter: DeadLetter) -> DeadLetter:
    """The letter cut to half its value (to nothing at last): the broker said it is too large."""
    size = len(letter.value or b"")
    return letter.fitted(size // 2 if size > 64 else 0)


def _code_name(error: Any) -> str:
    name = getattr(error, "name", None)
    return str(name()) if callable(name) else str(error)
