"""ShadowTap - mirrors a keyed sample of live transactions onto Kafka without hurting production.

``offer()`` is all the live service's request thread runs: the sampling hash, a shallow copy of
the features (the caller may reuse its dict as soon as offer() returns) and an append to a
bounded hand-off queue, about a microsecond. A sender thread redacts (drop and HMAC fields, the
card guard: ``shadow.redaction``), encodes and calls ``produce()``; it gives the GIL back every
``SEND_BATCH`` records, so a request thread never waits long behind it. The work is the same as
doing it in the request (``InlineTap``, chosen with ``tap.inline: true``); it leaves the
request path. Both send through the same Kafka side, ``producers.tap_producer.TapProducer``.

Never blocks, never raises: a sampled offer the hand-off queue cannot take (``tap.handoff_queue``
records waiting) is dropped and counted. When the broker is away the producer's queue fills, the
sender waits for room (it is not the service's thread), the hand-off queue fills behind it and
offers drop from then on, at the cost of a length check. A record handed over counts as
``enqueued`` at once, so ``offered == sampled_out + enqueued + dropped + rejected`` holds at any
moment; the sender later moves a record it cannot encode (a feature of an unsupported type, a
nested value, an oversized envelope) from ``enqueued`` to ``rejected``, and ``close()`` counts
what it could not send in time as ``failed``.
"""

from __future__ import annotations

import atexit
import collections
import itertools
import math
import threading
import time
from typing import Any, Protocol

from producers.inline import InlineTap, tap_producer_config
from producers.tap_producer import (
    TapProducer,
    close_at_exit,
    describe_error,
    log_start,
    read_count,
)
from shadow.envelope import HEADERS, FeatureValue, LiveScore
from shadow.redaction import Redactor
from shadow.sampling import Sampler
from shadow.settings import Settings

SEND_BATCH = 16
"""Records the sender handles (~50 us) before giving the GIL back to the service's threads."""
IDLE_SLEEP_S = 0.05
"""How long the sender sleeps when nothing is waiting. Each wake-up costs the service CPU and a
GIL hand-off: at 667 sampled records/s the tap's threads spent 38-42 us per record waking every
20 ms and 31-33 us every 50 ms (bench.tap_in_service); 50 ms of offers wait in the
hand-off queue (tap.handoff_queue holds 10,000: 200,000 sampled/s)."""
FULL_WAIT_S = 0.005
"""How long the sender waits before offering a record again to a full producer queue."""


class ShadowTap:
    """Offer live transactions; a keyed sample is handed to a sender thread and mirrored."""

    def __init__(self, settings: Settings, producer_config: dict[str, Any] | None = None) -> None:
        self.topic = settings.kafka.topic
        self.sampler = Sampler(settings.tap.sample_rate, settings.tap.salt)
        self.redactor = Redactor.from_settings(settings.tap)
        config = tap_producer_config(settings, producer_config)
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._pending_max = settings.tap.handoff_queue
        self._sampled_out = itertools.count()
        self._dropped = itertools.count()
        self._rejected = itertools.count()
        self._handed = itertools.count()
        self._sent = itertools.count()
        self._unsendable = itertools.count()
        self._unsent = itertools.count()
        self._accepting = True
        self._deadline = math.inf
        self._kafka = TapProducer(settings, self.redactor, config)
        self._encoded = self._kafka.encode
        self._at_exit = close_at_exit(self)
        log_start(self.topic, self.sampler.rate, self.redactor, settings.tap.card_guard)
        self._sender = threading.Thread(target=self._send, name="shadow-tap-send", daemon=True)
        self._sender.start()

    def offer(
        self,
        txn_id: str,
        features: dict[str, FeatureValue],
        live: LiveScore,
        event_time: int | None = None,
    ) -> bool:
        """Mirror this transaction if it is in the sample; True when it was accepted.

        Never raises and never blocks: a full hand-off queue drops the record (``dropped``),
        anything unexpected counts as rejected.
        """
        try:
            if not self.sampler(txn_id):
                next(self._sampled_out)
                return False
            if len(self._pending) >= self._pending_max or not self._accepting:
                next(self._dropped)
                return False
            when = time.time_ns() // 1_000_000 if event_time is None else event_time
            record = (txn_id, features.copy(), live, when)
        except Exception as exc:  # noqa: BLE001 - the live service must never see our failure
            return self._reject(exc)
        next(self._handed)  # before the sender can see it, so enqueued never reads negative
        self._pending.append(record)
        return True

    def room(self) -> bool:
        """True when the hand-off queue can take a record now. A batch tool (replay) waits
        for room before each offer, so it is slowed down instead of dropping; a live service
        never waits."""
        return len(self._pending) < self._pending_max

    def stats(self) -> dict[str, int]:
        """Counters since start; offered == sampled_out + enqueued + dropped + rejected, and
        enqueued == delivered + failed + in_flight (in the hand-off or the producer queue).
        card_numbers counts the feature values the card guard found a card number in."""
        # read what moves a record out of a state before what moves it in: a record moving
        # meanwhile is then briefly missing from a later state, never counted twice
        sampled_out, dropped = read_count(self._sampled_out), read_count(self._dropped)
        rejected = read_count(self._rejected)
        unsendable = read_count(self._unsendable)
        handed = read_count(self._handed)
        sent = read_count(self._sent)
        queued = len(self._kafka)
        failed_delivery = self._kafka.failed
        failed = failed_delivery + read_count(self._unsent)
        enqueued = handed - unsendable
        delivered = max(0, sent - queued - failed_delivery)
        return {
            "offered": sampled_out + enqueued + dropped + rejected,
            "sampled_out": sampled_out,
            "enqueued": enqueued,
            "dropped": dropped,
            "rejected": rejected,
            "failed": failed,
            "delivered": delivered,
            "in_flight": max(0, enqueued - delivered - failed),
            "card_numbers": read_count(self.redactor.caught),
        }

    def close(self, timeout: float = 10.0) -> int:
        """Stop accepting offers, send and deliver what was accepted within `timeout`; returns
        how many records were left undelivered (counted as failed)."""
        if not self._accepting:
            return 0
        self._accepting = False
        atexit.unregister(self._at_exit)
        self._deadline = time.monotonic() + timeout
        unsent = read_count(self._unsent)
        self._sender.join()
        left = self._kafka.close(max(0.0, self._deadline - time.monotonic()))
        while self._pending:  # an offer that raced with close(): accepted, never sent
            self._pending.popleft()
            next(self._unsent)
        return left + read_count(self._unsent) - unsent

    def _send(self) -> None:
        pending = self._pending
        while True:
            for _ in range(min(len(pending), SEND_BATCH)):
                self._send_one(*pending.popleft())
            if pending:
                time.sleep(0)  # hand the GIL back between batches
            elif self._accepting:
                time.sleep(IDLE_SLEEP_S)
            else:
                return

    def _send_one(
        self, txn_id: str, features: dict[str, FeatureValue], live: LiveScore, when: int
    ) -> None:
        try:
            value = self._encoded(txn_id, features, live, when)
        except Exception as exc:  # noqa: BLE001 - counted and logged, never raised
            next(self._unsendable)
            self._reject(exc)
            return
        while True:
            try:
                self._kafka.produce(self.topic, value, txn_id, -1, None, None, 0, HEADERS)
            except BufferError:  # the producer's queue is full: the broker is away or slow
                if time.monotonic() >= self._deadline:
                    self._give_up("the producer queue stayed full until close()")
                    return
                time.sleep(FULL_WAIT_S)
                continue
            except Exception as exc:  # noqa: BLE001
                self._give_up(describe_error(exc))
                return
            next(self._sent)
            return

    def _give_up(self, why: str) -> None:
        next(self._unsent)
        self._kafka.undelivered.log("tap record not sent to %s: %s", self.topic, why)

    def _reject(self, exc: Exception) -> bool:
        next(self._rejected)
        self._kafka.trouble.log(
            "tap rejected a transaction on %s: %s", self.topic, describe_error(exc)
        )
        return False

    def __enter__(self) -> ShadowTap:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Tap(Protocol):
    """What a live service (and replay, the synthetic service) uses of either tap."""

    topic: str

    def offer(
        self,
        txn_id: str,
        features: dict[str, FeatureValue],
        live: LiveScore,
        event_time: int | None = None,
    ) -> bool: ...

    def room(self) -> bool:
        """True when an offer now would not be dropped for a full queue."""
        ...

    def stats(self) -> dict[str, int]: ...

    def close(self, timeout: float = 10.0) -> int: ...


def open_tap(settings: Settings, producer_config: dict[str, Any] | None = None) -> Tap:
    """The tap the settings ask for: ShadowTap, or InlineTap when tap.inline is set."""
    if settings.tap.inline:
        return InlineTap(settings, producer_config)
    return ShadowTap(settings, producer_config)
