"""DeadLetters - refused records to `<topic>.dlq` with why and where from, acknowledged before
the offset past them is committed."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from shadow.card_numbers import mask_card_numbers
from shadow.envelope import (
    DLQ_DETAIL,
    DLQ_OFFSET,
    DLQ_PARTITION,
    DLQ_REASON,
    DLQ_SCRUBBED,
    DLQ_TOPIC,
)
from shadow.errors import DeadLetterError, EnvelopeError

logger = logging.getLogger(__name__)

_DETAIL_MAX = 300


@dataclass(frozen=True)
class DeadLetter:
    """A refused record as it will be produced to the dead-letter topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class DeadLetters:
    """Produces refused records; tracks, per source partition, those not yet acknowledged."""

    def __init__(self, producer: Any, topic: str, scrub: bool = True) -> None:
        self.producer = producer
        self.topic = topic
        self.scrub = scrub
        """Mask card numbers in the values (tap.card_guard is not warn)."""
        self._pending: dict[int, int] = defaultdict(int)
        self._failed: dict[int, list[DeadLetter]] = defaultdict(list)

    def send(self, source_topic: str, message: Any, error: EnvelopeError) -> None:
        partition, offset = message.partition(), message.offset()
        headers = [
            (DLQ_REASON, error.reason.encode()),
            (DLQ_DETAIL, error.detail[:_DETAIL_MAX].encode("utf-8", "replace")),
            (DLQ_TOPIC, source_topic.encode()),
            (DLQ_PARTITION, str(partition).encode()),
            (DLQ_OFFSET, str(offset).encode()),
        ]
        value, masked = message.value(), 0
        if self.scrub and value:
            # before anything else touches the bytes: a cut through a PAN would hide it
            value, masked = mask_card_numbers(value)
        if masked:
            headers.append((DLQ_SCRUBBED, str(masked).encode()))
        letter = DeadLetter(partition, offset, message.key(), value, headers)
        logger.warning(
            "%s[%d]@%d refused: %s%s",
            source_topic,
            partition,
            offset,
            error.reason,
            f" ({masked} card number(s) masked in the dead letter)" if masked else "",
        )
        self._produce(letter)

    def settle(self, partition: int, timeout: float = 10.0) -> None:
        """Return once every refused record of the partition is acknowledged; failed ones are
        sent again and DeadLetterError raised, so the caller commits nothing yet."""
        if not self._pending.get(partition) and not self._failed.get(partition):
            return
        self.producer.flush(timeout)
        failed = self._failed.pop(partition, [])
        for letter in failed:
            self._produce(letter)
        if failed or self._pending.get(partition):
            raise DeadLetterError(
                self.topic, f"{len(failed) + self._pending[partition]} records not acknowledged"
            )

    def drop(self, partition: int) -> None:
        """Forget a lost partition's failed records: its next owner refuses them again."""
        self._failed.pop(partition, None)

    def close(self, timeout: float = 10.0) -> None:
        left = self.producer.flush(timeout)
        if left:
            logger.warning("%d dead letters not acknowledged at close", left)

    def _produce(self, letter: DeadLetter) -> None:
        self._pending[letter.partition] += 1

        def delivered(err: Any, _msg: Any) -> None:
            self._pending[letter.partition] -= 1
            if err is not None:
                self._failed[letter.partition].append(letter)

        while True:
            try:
                self.producer.produce(
                    self.topic,
                    value=letter.value,
                    key=letter.key,
                    headers=letter.headers,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                self.producer.poll(0.1)
        self.producer.poll(0)
