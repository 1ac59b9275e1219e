"""InlineTap - the tap's Kafka side, and a tap whose offer() does everything in the caller.

``InlineTap.offer()`` samples by hash, redacts, encodes and calls ``produce()`` in the caller's
thread (about 5 us a sampled offer). ``producers.tap.ShadowTap``, the default tap, builds on it
and moves redaction, encoding and ``produce()`` to a sender thread. Both never block (the
producer's local queue is bounded: when full the record is dropped and counted) and never raise
(anything unexpected is counted as rejected, with a rate-limited log line). A background thread
serves delivery reports. Counters always satisfy
``offered == sampled_out + enqueued + dropped + rejected``; each ``enqueued`` record later
becomes ``delivered`` or ``failed`` (until then it is ``in_flight``).

Only failed deliveries get a report (``delivery.report.only.error``): a Python callback per
delivered record would cost the live process CPU and GIL time for nothing, so ``delivered`` is
worked out as enqueued - in flight - failed.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import math
import threading
import time
import weakref
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from shadow.clients import base_config, new_client
from shadow.envelope import HEADERS, SCHEMA_VERSION, Envelope, FeatureValue, LiveScore, encode
from shadow.logs import Throttled
from shadow.redaction import Redactor
from shadow.sampling import Sampler
from shadow.settings import Settings

# both taps log as the public module, producers.tap (ShadowTap builds on this one)
logger = logging.getLogger("producers.tap")

COUNTERS = ("sampled_out", "enqueued", "dropped", "rejected", "failed")
FULL_PAUSE_S = 0.01
"""After the queue refused a record, drop without encoding for this long (the queue is full)."""
EXIT_TIMEOUT_S = 5.0
"""At interpreter exit, a tap nobody closed gets this long to deliver what it accepted."""
LOG_EVERY_S = 10.0
"""At most one log line per kind of trouble in this many seconds."""


def read_count(counter: itertools.count) -> int:
    # itertools.count: next() is one atomic C call, safe from any number of caller threads
    # without a lock; its repr is the only way to read the value without advancing it.
    return int(repr(counter)[6:-1])


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


def _closed(*_args: object, **_kwargs: object) -> None:
    raise BufferError("the tap is closed")


class InlineTap:
    """Offer live transactions; a keyed sample is mirrored onto the shadow topic, in the caller."""

    def __init__(self, settings: Settings, producer_config: dict[str, Any] | None = None) -> None:
        self.topic = settings.kafka.topic
        self.sampler = Sampler(settings.tap.sample_rate, settings.tap.salt)
        self.redactor = Redactor.from_settings(settings.tap)
        self._redact = self.redactor.redact
        self._max_bytes = settings.tap.max_envelope_bytes
        self._config = {
            **tap_producer_config(settings, producer_config),
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            "logger": logging.getLogger("producers.tap.librdkafka"),
        }
        self._sampled_out = itertools.count()
        self._enqueued = itertools.count()
        self._dropped = itertools.count()
        self._rejected = itertools.count()
        self._failed = itertools.count()
        self._trouble = Throttled(logger, logging.WARNING, LOG_EVERY_S)
        self._undelivered = Throttled(logger, logging.WARNING, LOG_EVERY_S)
        self._fatal = threading.Event()
        self._stop = threading.Event()
        shared = settings.kafka.client_config
        self._producer = new_client(Producer, self._config, "tap.producer_config", shared)
        self._produce = self._producer.produce
        self._full_until = 0.0
        self._poller = threading.Thread(target=self._serve, name="shadow-tap-poll", daemon=True)
        self._poller.start()
        # a service that exits without close() still delivers what it accepted
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)
        logger.info(
            "tap to %s: sample rate %.4f, %d sensitive field name(s) redacted, card guard %s",
            self.topic,
            self.sampler.rate,
            len(self.redactor.sensitive),
            settings.tap.card_guard,
        )

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
            self._produce(self.topic, value, txn_id, -1, None, None, 0, HEADERS)
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

    def _encoded(
        self,
        txn_id: str,
        features: dict[str, FeatureValue],
        live: LiveScore,
        event_time: int | None,
    ) -> bytes:
        """The redacted envelope's bytes; ValueError (or msgspec's) for what cannot be sent."""
        if not (math.isfinite(live.score) and math.isfinite(live.latency_ms)):
            raise ValueError("live.score and live.latency_ms must be finite")
        if event_time is None:
            event_time = time.time_ns() // 1_000_000
        value = encode(Envelope(SCHEMA_VERSION, txn_id, event_time, live, self._redact(features)))
        if len(value) > self._max_bytes:
            raise ValueError(f"envelope of {len(value)} bytes exceeds {self._max_bytes}")
        return value

    def _reject(self, exc: Exception) -> bool:
        next(self._rejected)
        self._trouble.log("tap rejected a transaction on %s: %s", self.topic, describe_error(exc))
        return False

    def stats(self) -> dict[str, int]:
        """Counters since start; offered == sampled_out + enqueued + dropped + rejected.
        card_numbers counts the feature values the card guard found a card number in."""
        counts = {name: read_count(getattr(self, f"_{name}")) for name in COUNTERS}
        # read in flight before failed: a record failing in between is then subtracted twice
        # (delivered reads low for a moment) rather than counted as delivered
        in_flight = len(self._producer)
        failed = read_count(self._failed)
        offered = sum(counts[name] for name in ("sampled_out", "enqueued", "dropped", "rejected"))
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
        if self._produce is _closed:
            return 0
        atexit.unregister(self._at_exit)
        self._produce = _closed
        self._stop.set()
        self._poller.join()
        left = self._producer.flush(timeout)
        if left:
            logger.warning("tap closed with %d record(s) undelivered on %s", left, self.topic)
            # purged records get their delivery report now and count as failed, so the
            # counters are final once close() returns
            self._producer.purge()
            self._producer.flush(0)
        return left

    def __enter__(self) -> InlineTap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)
            if self._fatal.is_set():
                self._replace_producer()

    def _replace_producer(self) -> None:
        # a fatal error (e.g. an idempotence epoch that cannot be recovered) makes a producer
        # useless for good: start a fresh one so the tap keeps mirroring, fail the old queue
        if self._stop.is_set():
            return
        old = self._producer
        self._producer = Producer(self._config)  # the same config was accepted at start
        self._produce = self._producer.produce
        self._fatal.clear()
        old.purge()
        old.flush(0)
        logger.warning("tap producer for %s was replaced after a fatal error", self.topic)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:  # only when producer_config turned success reports back on
            return
        next(self._failed)
        self._undelivered.log(
            "tap record not delivered to %s[%s]: %s", msg.topic(), msg.partition(), err.str()
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            logger.error("tap producer fatal error: %s", err.str())
            self._fatal.set()
            return
        self._trouble.log("tap producer: %s", err.str())


def _close_at_exit(ref: weakref.ref[InlineTap]) -> None:
    tap = ref()
    if tap is not None:
        tap.close(EXIT_TIMEOUT_S)


def describe_error(exc: Exception) -> str:
    # the type and message only: messages from msgspec/ValueError name fields, never values
    return f"{type(exc).__name__}: {exc}"
