"""DecisionJoin - requests and live decisions from two topics, paired on txn_id in a window.

Each sampled half (a request with its redacted features, or a decision with its live score)
waits in memory for its other half. Bounds:

- time: a half waits ``source.join_window_s`` by the Kafka timestamps of the records, measured
  against the partition read least far (``JoinClock``: the lowest newest timestamp over every
  partition of both topics; one read to its end moves on with the wall clock while it stays
  idle), so a backlog on one topic or partition does not expire the other's halves early; a
  half past the window goes to the DLQ as ``unmatched_request`` / ``unmatched_decision``;
- memory: at most ``source.join_max_pending`` halves; beyond it the oldest goes to the DLQ as
  ``join_overflow`` (e.g. when one topic stops flowing, nothing else would expire).

A second request (or decision) for a txn_id that is still waiting goes to the DLQ as
``duplicate``. What waits is also written to a compacted changelog topic inside the same Kafka
transaction as the consumed offsets (``changes()``: the halves that arrived and are still
waiting, a tombstone for those that left, and where the window's clock stands), so after a
kill -9 the state read back from the changelog is exactly the state at the last committed
offsets: nothing is joined twice or lost, and the window goes on from where it stood.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

from shadow.envelope import JoinHalf, encode_join_half

REQUEST = "request"
DECISION = "decision"
CLOCK = "clock"
CLOCK_KEY = b"clock"
UNMATCHED = {REQUEST: "unmatched_request", DECISION: "unmatched_decision"}


@dataclass(frozen=True)
class Joined:
    """Both halves of one transaction."""

    request: JoinHalf
    decision: JoinHalf


@dataclass(frozen=True)
class Unjoined:
    """A half that leaves the join without its other half: reason and detail for the DLQ."""

    half: JoinHalf
    reason: str
    detail: str


Outcome = Joined | Unjoined


class JoinClock:
    """How far, in Kafka time, every partition of both topics has surely been read.

    A partition being read stands at the newest timestamp read from it. One read to its end
    (an end-of-partition event) stands there too, and then moves on with the wall clock while
    it stays idle: a quiet partition does not stop the window, yet one whose next records are
    only late in reaching this process (a fetch behind its siblings') cannot expire the other
    side's halves early unless it lags more than the window in real time.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.expected: set[tuple[str, int]] = set()
        self.newest: dict[tuple[str, int], int] = {}
        self.idle: dict[tuple[str, int], float] = {}
        """Partitions read to their end: since when (monotonic seconds)."""
        self._monotonic = monotonic

    def expect(self, kind: str, partitions: list[int]) -> None:
        """The clock stands still until each of these partitions was heard from."""
        self.expected.update((kind, partition) for partition in partitions)

    def tick(self, kind: str, partition: int, timestamp: int) -> None:
        key = (kind, partition)
        self.idle.pop(key, None)
        if timestamp > self.newest.get(key, 0):
            self.newest[key] = timestamp

    def caught_up(self, kind: str, partition: int) -> None:
        """The partition was read to its end."""
        self.idle.setdefault((kind, partition), self._monotonic())

    def now(self) -> int:
        """The lowest point any partition surely stands at (0 while one was not heard from;
        a partition that never had a record holds nothing back)."""
        if not self.expected <= set(self.newest) | set(self.idle):
            return 0
        moment = self._monotonic()
        points = [
            stamp + round((moment - self.idle[key]) * 1000) if key in self.idle else stamp
            for key, stamp in self.newest.items()
        ]
        return min(points, default=0)

    def reset(self, newest: dict[str, int] | None = None) -> None:
        """Start again from a clock record's marks ("<kind>:<partition>": timestamp)."""
        self.idle = {}
        self.newest = {}
        for key, stamp in (newest or {}).items():
            kind, _, partition = key.rpartition(":")
            self.newest[(kind, int(partition))] = stamp

    def marks(self) -> dict[str, int]:
        return {f"{kind}:{partition}": stamp for (kind, partition), stamp in self.newest.items()}


def changelog_key(kind: str, txn_id: str) -> bytes:
    return f"{kind}:{txn_id}".encode()


class DecisionJoin:
    """Halves waiting for their other half, in arrival order, with the window's clock."""

    def __init__(self, window_ms: int, max_pending: int) -> None:
        self.window_ms = window_ms
        self.max_pending = max_pending
        self.waiting: dict[str, collections.OrderedDict[str, JoinHalf]] = {
            REQUEST: collections.OrderedDict(),
            DECISION: collections.OrderedDict(),
        }
        self.clock = JoinClock()
        self._changed: set[tuple[str, str]] = set()
        self._logged: dict[tuple[str, str], JoinHalf] = {}
        """What the changelog holds for each key (after this transaction commits)."""
        self._logged_marks: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.waiting[REQUEST]) + len(self.waiting[DECISION])

    def offer(self, half: JoinHalf) -> list[Outcome]:
        """Pair the half with its waiting other half, or keep it waiting."""
        kind, other = half.kind, DECISION if half.kind == REQUEST else REQUEST
        match = self.waiting[other].pop(half.txn_id, None)
        if match is not None:
            self._changed.add((other, half.txn_id))
            pair = Joined(half, match) if kind == REQUEST else Joined(match, half)
            return [pair]
        if half.txn_id in self.waiting[kind]:
            return [Unjoined(half, "duplicate", f"a second {kind} for a waiting txn_id")]
        self.waiting[kind][half.txn_id] = half
        self._changed.add((kind, half.txn_id))
        return self._overflow()

    def expire(self) -> list[Unjoined]:
        """Halves whose window has passed, by the clock of the partition read least far."""
        clock = self.clock.now()
        out: list[Unjoined] = []
        for kind, waiting in self.waiting.items():
            while waiting:
                head = next(iter(waiting.values()))
                if head.timestamp + self.window_ms >= clock:
                    break
                out.append(self._leave(kind, UNMATCHED[kind], "no other half in the window"))
        return out

    def _overflow(self) -> list[Outcome]:
        out: list[Outcome] = []
        while len(self) > self.max_pending:
            heads = [(next(iter(w.values())).timestamp, k) for k, w in self.waiting.items() if w]
            kind = min(heads)[1]
            out.append(self._leave(kind, "join_overflow", "source.join_max_pending reached"))
        return out

    def _leave(self, kind: str, reason: str, detail: str) -> Unjoined:
        txn_id, half = self.waiting[kind].popitem(last=False)
        self._changed.add((kind, txn_id))
        return Unjoined(half, reason, detail)

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Changelog records since the last call: (key, value) for a half that arrived and
        still waits, (key, None) for one the changelog holds that has left."""
        records: list[tuple[bytes, bytes | None]] = []
        for kind, txn_id in self._changed:
            half = self.waiting[kind].get(txn_id)
            key = (kind, txn_id)
            if half is not None and self._logged.get(key) is not half:
                records.append((changelog_key(kind, txn_id), encode_join_half(half)))
                self._logged[key] = half
            elif half is None and key in self._logged:
                records.append((changelog_key(kind, txn_id), None))
                del self._logged[key]
        self._changed.clear()
        marks = self.clock.marks()
        if marks != self._logged_marks:  # the clock is state too: a restart goes on from here
            clock = JoinHalf(CLOCK, "", 0, "", 0, 0, newest=marks)
            records.append((CLOCK_KEY, encode_join_half(clock)))
            self._logged_marks = marks
        return records

    def restore(self, halves: list[JoinHalf]) -> None:
        """Start again from the changelog's halves (in their changelog order)."""
        for waiting in self.waiting.values():
            waiting.clear()
        self._changed.clear()
        self._logged.clear()
        clocks = [half.newest for half in halves if half.kind == CLOCK]
        self.clock.reset(clocks[-1] if clocks else None)
        self._logged_marks = self.clock.marks()
        for half in halves:
            if half.kind == CLOCK:
                continue
            self.waiting[half.kind][half.txn_id] = half
            self._logged[(half.kind, half.txn_id)] = half
