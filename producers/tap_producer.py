"""TapProducer - the Kafka side both taps send through: the record's bytes and its producer.

``ShadowTap`` (the default, in producers.tap) calls it from its sender thread, ``InlineTap``
(producers.inline) from the caller's thread; neither builds on the other. ``encode`` redacts
(``shadow.redaction``) and encodes a sampled transaction; ``produce`` is the producer's own
``produce`` (a bound C call, kept as an attribute: this is the request's hot path), raising
BufferError when the producer's local queue is full. A thread serves delivery reports; only
failures get one (``delivery.report.only.error``): a Python callback per delivered record would
cost the live process CPU and GIL time for nothing, so a tap works ``delivered`` out as sent -
in flight (``len()``) - ``failed``. A fatal producer error (e.g. an idempotence epoch that
cannot be recovered) gets a fresh producer, so the tap keeps mirroring.
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
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from shadow.clients import new_client
from shadow.envelope import SCHEMA_VERSION, Envelope, FeatureValue, LiveScore, encode
from shadow.logs import Throttled
from shadow.redaction import Redactor
from shadow.settings import Settings

# both taps log as the public module, producers.tap
logger = logging.getLogger("producers.tap")

EXIT_TIMEOUT_S = 5.0
"""At interpreter exit, a tap nobody closed gets this long to deliver what it accepted."""
LOG_EVERY_S = 10.0
"""At most one log line per kind of trouble in this many seconds."""


def read_count(counter: itertools.count[int]) -> int:
    # itertools.count: next() is one atomic C call, safe from any number of caller threads
    # without a lock; its repr is the only way to read the value without advancing it.
    return int(repr(counter)[6:-1])


def describe_error(exc: Exception) -> str:
    # the type and message only: messages from msgspec/ValueError name fields, never values
    return f"{type(exc).__name__}: {exc}"


def _closed(*_args: object, **_kwargs: object) -> None:
    raise BufferError("the tap is closed")


class TapProducer:
    """The tap's Kafka producer, its delivery reports, and the redacted envelope it sends."""

    def __init__(self, settings: Settings, redactor: Redactor, config: dict[str, Any]) -> None:
        self.topic = settings.kafka.topic
        self.redactor = redactor
        self._redact = redactor.redact
        self._max_bytes = settings.tap.max_envelope_bytes
        self._config = {
            **config,
            "on_delivery": self._on_delivery,
            "error_cb": self._on_error,
            "logger": logging.getLogger("producers.tap.librdkafka"),
        }
        self._failed = itertools.count()
        self.trouble = Throttled(logger, logging.WARNING, LOG_EVERY_S)
        """Rate-limited log of what the tap refused and what the producer reported."""
        self.undelivered = Throttled(logger, logging.WARNING, LOG_EVERY_S)
        """Rate-limited log of records that did not reach the broker."""
        self._fatal = threading.Event()
        self._stop = threading.Event()
        shared = settings.kafka.client_config
        self.producer = new_client(Producer, self._config, "tap.producer_config", shared)
        self.produce: Any = self.producer.produce
        """produce(topic, value, key, partition, callback, on_delivery, timestamp, headers)."""
        self._poller = threading.Thread(target=self._serve, name="shadow-tap-poll", daemon=True)
        self._poller.start()

    def encode(
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

    @property
    def failed(self) -> int:
        """Records whose delivery failed (or that close() purged)."""
        return read_count(self._failed)

    @property
    def closed(self) -> bool:
        return self.produce is _closed

    def __len__(self) -> int:
        """Records in the producer's queue, not yet delivered or failed."""
        return len(self.producer)

    def close(self, timeout: float) -> int:
        """Refuse further records, deliver what is queued within `timeout`; returns what is
        left, then counted as failed."""
        if self.closed:
            return 0
        self.produce = _closed
        self._stop.set()
        self._poller.join()
        left = self.producer.flush(timeout)
        if left:
            logger.warning("tap closed with %d record(s) undelivered on %s", left, self.topic)
            # purged records get their delivery report now and count as failed, so the
            # counters are final once close() returns
            self.producer.purge()
            self.producer.flush(0)
        return left

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.1)
            if self._fatal.is_set():
                self._replace_producer()

    def _replace_producer(self) -> None:
        # a fatal error makes a producer useless for good: start a fresh one so the tap keeps
        # mirroring, fail the old queue
        if self._stop.is_set():
            return
        old = self.producer
        self.producer = Producer(self._config)  # the same config was accepted at start
        self.produce = self.producer.produce
        self._fatal.clear()
        old.purge()
        old.flush(0)
        logger.warning("tap producer for %s was replaced after a fatal error", self.topic)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:  # only when producer_config turned success reports back on
            return
        next(self._failed)
        self.undelivered.log(
            "tap record not delivered to %s[%s]: %s", msg.topic(), msg.partition(), err.str()
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            logger.error("tap producer fatal error: %s", err.str())
            self._fatal.set()
            return
        self.trouble.log("tap producer: %s", err.str())


class Closable(Protocol):
    def close(self, timeout: float = ...) -> int: ...


def close_at_exit(tap: Closable) -> functools.partial[None]:
    """Registers closing the tap at interpreter exit (EXIT_TIMEOUT_S), so a service that exits
    without close() still delivers what it accepted; atexit.unregister the handle on close."""
    handle = functools.partial(_close_at_exit, weakref.ref(tap))
    atexit.register(handle)
    return handle


def _close_at_exit(ref: weakref.ref[Closable]) -> None:
    tap = ref()
    if tap is not None:
        tap.close(EXIT_TIMEOUT_S)


def log_start(topic: str, rate: float, redactor: Redactor, card_guard: str) -> None:
    logger.info(
        "tap to %s: sample rate %.4f, %d sensitive field name(s) redacted, card guard %s",
        topic,
        rate,
        len(redactor.sensitive),
        card_guard,
    )
