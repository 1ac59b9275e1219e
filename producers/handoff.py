"""HandoffTap - a ShadowTap whose offer() only samples and hands the record to a sender thread.

``offer()`` then costs about a microsecond: the hash, a shallow copy of the features (the caller
may reuse its dict as soon as offer() returns) and an append to a bounded deque. Redaction,
encoding and ``produce()`` run on a sender thread that gives the GIL back every
``SEND_BATCH`` records. The work is the same; it leaves the request path. Choose it with
``tap.handoff: true`` (``open_tap`` does) when the live service is I/O-bound (it waits on the
network, a database, a feature store), so the sender runs in time the service would idle.

Counters gain ``pending`` (handed over, not yet through the sender):
``offered == sampled_out + enqueued + dropped + rejected + pending``, and pending is 0 after
``close()``. A full hand-off queue drops the record (``dropped``), as a full producer queue does.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from typing import Any

from producers.tap import ShadowTap, read_count
from shadow.envelope import FeatureValue, LiveScore
from shadow.settings import Settings

SEND_BATCH = 64
"""Records the sender handles before giving the GIL back to the live service's threads."""
IDLE_SLEEP_S = 0.001
"""How long the sender sleeps when nothing is pending."""


class HandoffTap(ShadowTap):
    """ShadowTap with redaction, encoding and produce() moved to a sender thread."""

    def __init__(self, settings: Settings, producer_config: dict[str, Any] | None = None) -> None:
        self._pending: collections.deque[tuple[Any, ...]] = collections.deque()
        self._pending_max = settings.tap.handoff_queue
        self._offered = itertools.count()
        self._accepting = True
        super().__init__(settings, producer_config)
        self._sender = threading.Thread(target=self._send, name="shadow-tap-send", daemon=True)
        self._sender.start()

    def offer(
        self,
        txn_id: str,
        features: dict[str, FeatureValue],
        live: LiveScore,
        event_time: int | None = None,
    ) -> bool:
        """Hand the transaction over if it is in the sample; True when it was accepted."""
        next(self._offered)
        try:
            if not self.sampler(txn_id):
                next(self._sampled_out)
                return False
            if len(self._pending) >= self._pending_max or not self._accepting:
                next(self._dropped)
                return False
            when = time.time_ns() // 1_000_000 if event_time is None else event_time
            self._pending.append((txn_id, features.copy(), live, when))
        except Exception as exc:  # noqa: BLE001 - the live service must never see our failure
            return self._reject(exc)
        return True

    def stats(self) -> dict[str, int]:
        """The ShadowTap counters plus ``pending``; offered is counted as offers arrive."""
        stats = super().stats()
        # read offered last: an offer arriving meanwhile shows as pending, never as negative
        offered = read_count(self._offered)
        stats["pending"] = max(0, offered - stats["offered"])
        stats["offered"] = offered
        return stats

    def close(self, timeout: float = 10.0) -> int:
        """Send what was handed over, then close the producer as ShadowTap.close does."""
        if not self._accepting:
            return 0
        self._accepting = False
        self._sender.join()
        left = super().close(timeout)
        # an offer that raced with close() is counted as dropped, so pending ends at 0
        while self._pending:
            self._mirror(*self._pending.popleft())
        return left

    def _send(self) -> None:
        pending = self._pending
        while True:
            for _ in range(min(len(pending), SEND_BATCH)):
                self._mirror(*pending.popleft())
            if pending:
                time.sleep(0)  # hand the GIL back between batches
            elif self._accepting:
                time.sleep(IDLE_SLEEP_S)
            else:
                return


def open_tap(settings: Settings, producer_config: dict[str, Any] | None = None) -> ShadowTap:
    """The tap the settings ask for: HandoffTap when tap.handoff is set, else ShadowTap."""
    if settings.tap.handoff:
        return HandoffTap(settings, producer_config)
    return ShadowTap(settings, producer_config)
