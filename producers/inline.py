"""InlineTap - a tap whose offer() does everything in the caller's thread.

``InlineTap.offer()`` samples by hash, redacts, encodes and calls ``produce()`` in the caller's
thread (about 5 us a sampled offer), through the same Kafka side as the default tap
(``producers.tap_producer.TapProducer``); ``producers.tap.ShadowTap`` does the same work in a
sender thread. Both never block (the producer's local queue is bounded: when full the record is
dropped and counted) and never raise (anything unexpected is counted as rejected, with a
rate-limited log line). Counters always satisfy
``offered == sampled_out + enqueued + dropped + rejected``; each ``enqueued`` record later
becomes ``delivered`` or ``failed`` (until then it is ``in_flight``).
"""

from __future__ import annotations

import atexit
import itertools
import time
from typing import Any

from producers.tap_producer import (
    TapProducer,
    close_at_exit,
    describe_error,
    log_start,
    read_count,
)
from shadow.clients import base_config
from shadow.envelope import HEADERS, FeatureValue, LiveScore
from shadow.redaction import Redactor
from shadow.sampling import Sampler
from shadow.settings import Settings

COUNTERS = ("sampled_out", "enqueued", "dropped", "rejected")
FULL_PAUSE_S = 0.01
"""After the queue refused a record, drop without encoding for this long (the queue is full)."""


def tap_producer_config(
    settings: Settings, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """librdkafka properties of the tap's producer: safe defaults, then settings, then overrides."""
    tap = settings.tap
    config: dict[str, Any] = {
        **base_config(settings.kafka),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": tap.linger_ms,
        "compression.type": tap.compression,
        "queue.buffering.max.messages": tap.queue_max_messages,
        "queue.buffering.max.kbytes": tap.queue_max_kbytes,
        "message.timeout.ms": tap.delivery_timeout_ms,
        "message.max.bytes": max(1_000_000, tap.max_envelope_bytes + 4096),
        "client.id": "shadow-tap",
        "delivery.report.only.error": True,
    }
    config.update(tap.producer_config)
    config.update(overrides or {})
    return config


class InlineTap:
    """Offer live transactions; a keyed sample is mirrored onto the shadow topic, in the caller."""

    def __init__(self, settings: Settings, producer_config: dict[str, Any] | None = None) -> None:
        self.topic = settings.kafka.topic
        self.sampler = Sampler(settings.tap.sample_rate, settings.tap.salt)
        self.redactor = Redactor.from_settings(settings.tap)
        config = tap_producer_config(settings, producer_config)
        self._sampled_out = itertools.count()
        self._enqueued = itertools.count()
        self._dropped = itertools.count()
        self._rejected = itertools.count()
        self._kafka = TapProducer(settings, self.redactor, config)
        self._encoded = self._kafka.encode
        self._full_until = 0.0
        self._at_exit = close_at_exit(self)
        log_start(self.topic, self.sampler.rate, self.redactor, settings.tap.card_guard)

    def offer(
        self,
        txn_id: str,
        features: dict[str, FeatureValue],
        live: LiveScore,
        event_time: int | None = None,
    ) -> bool:
        """Mirror this transaction if it is in the sample; True when it was enqueued.

        Never raises and never blocks: a full local queue drops the record (``dropped``),
        anything unexpected (wrong types, a nested feature value, non-finite live score,
        oversized) counts as rejected.
        """
        try:
            if not self.sampler(txn_id):
                next(self._sampled_out)
                return False
        except Exception as exc:  # noqa: BLE001 - e.g. a txn_id that is not text
            return self._reject(exc)
        return self._mirror(txn_id, features, live, event_time)

    def _mirror(
        self,
        txn_id: str,
        features: dict[str, FeatureValue],
        live: LiveScore,
        event_time: int | None,
    ) -> bool:
        """Redact, encode and enqueue one sampled transaction; counted whatever happens."""
        try:
            if self._full_until and time.monotonic() < self._full_until:
                # the broker is away or slow: encoding a record the queue cannot take would
                # spend the live service's CPU for nothing
                next(self._dropped)
                return False
            value = self._encoded(txn_id, features, live, event_time)
            # all positional (topic, value, key, partition, callback, on_delivery, timestamp,
            # headers): keyword arguments cost the C call a dict, ~0.5 us on this path
            self._kafka.produce(self.topic, value, txn_id, -1, None, None, 0, HEADERS)
        except BufferError:
            self._full_until = time.monotonic() + FULL_PAUSE_S
            next(self._dropped)
            return False
        except Exception as exc:  # noqa: BLE001 - the live service must never see our failure
            return self._reject(exc)
        next(self._enqueued)
        return True

    def room(self) -> bool:
        """False for FULL_PAUSE_S after the producer's queue refused a record: a batch tool
        (replay) waits instead of offering into a full queue; a live service never waits."""
        return not self._full_until or time.monotonic() >= self._full_until

    def _reject(self, exc: Exception) -> bool:
        next(self._rejected)
        self._kafka.trouble.log(
            "tap rejected a transaction on %s: %s", self.topic, describe_error(exc)
        )
        return False

    def stats(self) -> dict[str, int]:
        """Counters since start; offered == sampled_out + enqueued + dropped + rejected.
        card_numbers counts the feature values the card guard found a card number in."""
        counts = {name: read_count(getattr(self, f"_{name}")) for name in COUNTERS}
        # read in flight before failed: a record failing in between is then subtracted twice
        # (delivered reads low for a moment) rather than counted as delivered
        in_flight = len(self._kafka)
        failed = self._kafka.failed
        offered = sum(counts.values())
        delivered = max(0, counts["enqueued"] - in_flight - failed)
        return {
            "offered": offered,
            **counts,
            "failed": failed,
            "delivered": delivered,
            "in_flight": in_flight,
            "card_numbers": read_count(self.redactor.caught),
        }

    def close(self, timeout: float = 10.0) -> int:
        """Stop accepting offers, deliver what is queued within `timeout`; returns what is left."""
        if self._kafka.closed:
            return 0
        atexit.unregister(self._at_exit)
        return self._kafka.close(timeout)

    def __enter__(self) -> InlineTap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
