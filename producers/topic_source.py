"""TopicSource - mirrors a live service's own topic onto the shadow topic, exactly once.

A consume-transform-produce loop in Kafka transactions: the envelopes, the dead letters, the
join's changelog records (joined mode) and the consumed offsets (``send_offsets_to_transaction``)
of one ``source.commit_interval_ms`` are committed together or not at all. A kill -9 at any point
leaves an open transaction that the restarted process aborts (``init_transactions`` with the
same ``transactional.id``) before it reads again from the committed offsets, so a
``read_committed`` consumer (the workers are) sees every sampled record exactly once.

Plain mode subscribes in the consumer group ``source.group_id`` (several processes share the
partitions, each with its own ``source.instance_id``); joined mode (``source.decisions_topic``)
is one process that assigns itself every partition of both topics, its state in the changelog.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from typing import Any

from producers.source_clients import SourceClients, TransactionAborted
from producers.topic_join import DECISION, REQUEST, DecisionJoin, Joined, Outcome
from producers.topic_mapping import MappingSpec
from producers.topic_transform import SourceTransform
from shadow.envelope import HEADERS, JoinHalf, dead_letter_headers
from shadow.errors import EnvelopeError
from shadow.logs import Throttled
from shadow.settings import Settings

logger = logging.getLogger(__name__)

LOG_EVERY_S = 10.0


class TopicSource:
    """`shadow tap from-topic`: source topic(s) -> envelopes on the shadow topic, exactly once."""

    def __init__(self, settings: Settings, spec: MappingSpec) -> None:
        conf = settings.source
        self.settings = settings
        self.topic = conf.topic or ""
        self.decisions_topic = conf.decisions_topic
        self.transform = SourceTransform(settings, spec)
        self.join = (
            DecisionJoin(round(conf.join_window_s * 1000), conf.join_max_pending)
            if self.decisions_topic
            else None
        )
        self.shadow_topic = settings.kafka.topic
        self.interval_s = conf.commit_interval_ms / 1000
        self.counts: Counter[str] = Counter()
        self._open: Counter[str] = Counter()  # the open transaction's, added at its commit
        self.clients = SourceClients(settings, self.topic, self.decisions_topic)
        self.dlq_topic = self.clients.dlq_topic
        self._next: dict[tuple[str, int], int] = {}
        self._open_since: float | None = None
        self._stopping = threading.Event()
        self._logged_at = time.monotonic()
        self._refused = Throttled(logger, logging.WARNING, 1.0)  # a wrong mapping: every record

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Fence and abort a predecessor's open transaction, restore the join, start reading."""
        self.clients.start(on_revoke=self._on_revoke)
        if self.join is not None:
            self.join.restore(self.clients.read_changelog())
            logger.info("join state restored: %d waiting half(s)", len(self.join))
        self.clients.attach()
        if self.join is not None:
            for topic, partitions in self.clients.partitions.items():
                self.join.clock.expect(self._side_of(topic), partitions)

    def run(self, idle_exit_s: float = 0.0) -> dict[str, int]:
        """Mirror until stop() (SIGTERM, Ctrl-C), or until nothing came for idle_exit_s (> 0);
        commits what was read, then returns the counters."""
        self.start()
        idle_since, heard = time.monotonic(), False
        try:
            while not self._stopping.is_set():
                read = self.step()  # records and end-of-partition events
                heard = heard or read > 0
                if read or not heard:  # idle counts once a fetch answered (a record or an end)
                    idle_since = time.monotonic()
                elif idle_exit_s and time.monotonic() - idle_since >= idle_exit_s:
                    break
            self.commit()
        finally:
            if self._open_since is not None:  # stopped by an error: nothing of it is kept
                self.clients.abort()
                self._open_since = None
            self.clients.close()
        return self.stats()

    def stop(self) -> None:
        self._stopping.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    def stats(self) -> dict[str, int]:
        waiting = {"join_waiting": len(self.join)} if self.join is not None else {}
        names = ("consumed", "sampled_out", "mirrored", "dead_letters", "transactions", "aborted")
        return {name: self.counts[name] for name in names} | waiting

    # -- the loop ----------------------------------------------------------------------------

    def step(self) -> int:
        """One consume() and what it read, committed when the interval is up or input paused."""
        messages = self.clients.consume()
        try:
            for message in messages:
                if message.error() is None:
                    self._handle(message)
                elif self.clients.log_error(message) and self.join is not None:
                    self.join.clock.caught_up(self._side(message), message.partition())
            if self.join is not None and messages:
                self._settle(self.join.expire())
            due = self._open_since is not None and (
                not messages or time.monotonic() - self._open_since >= self.interval_s
            )
            if due:
                self.commit()
        except TransactionAborted:
            self._recover()
        self._maybe_log()
        return len(messages)

    def _handle(self, message: Any) -> None:
        self._begin()
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        self._next[(topic, partition)] = offset + 1
        self._open["consumed"] += 1
        try:
            if self.join is None:
                self._mirror(message)
            else:
                self._settle(self._to_join(message))
        except EnvelopeError as exc:
            self._dead_letter(exc, topic, partition, offset, None)

    def _mirror(self, message: Any) -> None:
        mirrored = self.transform.mirror(message.value(), _timestamp(message))
        if mirrored is None:
            self._open["sampled_out"] += 1
            return
        txn_id, value = mirrored
        self.clients.produce(self.shadow_topic, value, txn_id.encode(), HEADERS)
        self._open["mirrored"] += 1

    def _to_join(self, message: Any) -> list[Outcome]:
        assert self.join is not None
        where = (message.topic(), message.partition(), message.offset())
        stamp = _timestamp(message)
        if message.topic() == self.topic:
            self.join.clock.tick(REQUEST, message.partition(), stamp)
            request = self.transform.request(message.value(), stamp)
            if request is None:
                self._open["sampled_out"] += 1
                return []
            txn_id, event_time, features = request
            half = JoinHalf(REQUEST, txn_id, stamp, *where, event_time, features)
        else:
            self.join.clock.tick(DECISION, message.partition(), stamp)
            decision = self.transform.decision(message.value())
            if decision is None:
                self._open["sampled_out"] += 1
                return []
            half = JoinHalf(DECISION, decision[0], stamp, *where, live=decision[1])
        return self.join.offer(half)

    def _side_of(self, topic: str) -> str:
        return REQUEST if topic == self.topic else DECISION

    def _side(self, message: Any) -> str:
        return self._side_of(message.topic())

    def _settle(self, outcomes: list[Any]) -> None:
        if outcomes:
            self._begin()  # halves may leave on an end-of-partition event alone
        for outcome in outcomes:
            if isinstance(outcome, Joined):
                self._emit(outcome)
                continue
            half = outcome.half
            error = EnvelopeError(outcome.reason, outcome.detail)
            self._dead_letter(error, half.topic, half.partition, half.offset, half.txn_id)

    def _emit(self, pair: Joined) -> None:
        request, live = pair.request, pair.decision.live
        assert live is not None
        try:
            value = self.transform.checked(
                request.txn_id, request.features or {}, live, request.event_time
            )
        except EnvelopeError as exc:
            self._dead_letter(exc, request.topic, request.partition, request.offset, None)
            return
        self.clients.produce(self.shadow_topic, value, request.txn_id.encode(), HEADERS)
        self._open["mirrored"] += 1

    def _dead_letter(
        self, error: EnvelopeError, topic: str, partition: int, offset: int, txn_id: str | None
    ) -> None:
        # no value: the source record is the live service's raw data (card data may sit under
        # any name); it stays on its own topic, where the headers point
        headers = dead_letter_headers(error, topic, partition, offset)
        key = txn_id.encode() if txn_id else None
        self.clients.produce(self.dlq_topic, None, key, headers)
        self._open["dead_letters"] += 1
        self._refused.log("%s[%d]@%d dead-lettered: %s", topic, partition, offset, error.reason)

    # -- transactions ------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._open_since is None:
            self.clients.begin()
            self._open_since = time.monotonic()

    def commit(self) -> None:
        """Commit the open transaction: outputs, changelog and offsets together."""
        if self._open_since is None:
            return
        if self.join is not None:
            for key, value in self.join.changes():
                self.clients.produce(self.clients.changelog_topic, value, key, None)
        self.clients.commit(self._next)
        self._next.clear()
        self._open_since = None
        self.counts.update(self._open)
        self.counts["transactions"] += 1
        self._open.clear()

    def _recover(self) -> None:
        """After an aborted transaction: read again from the committed offsets and state."""
        self._next.clear()
        self._open_since = None
        self._open.clear()
        self.counts["aborted"] += 1
        self.clients.rewind()
        if self.join is not None:
            self.join.restore(self.clients.read_changelog())

    def _on_revoke(self, _consumer: Any, _partitions: list[Any]) -> None:
        # the next owner starts from the committed offsets: commit what this one read first
        try:
            self.commit()
        except TransactionAborted:
            self._next.clear()
            self._open_since = None
            self._open.clear()
            self.counts["aborted"] += 1

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            logger.info("from-topic %s: %s", self.topic, self.stats())


def _timestamp(message: Any) -> int:
    kind, stamp = message.timestamp()
    return stamp if kind and stamp > 0 else time.time_ns() // 1_000_000
