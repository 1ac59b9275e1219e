"""KafkaLog - librdkafka's log lines and error callbacks at sensible levels, summarised.

librdkafka reports a broker it cannot reach at syslog ERR, once per reconnect attempt and client,
and its error callback repeats it: a 15 s broker halt made hundreds of ERROR lines. Here a
connection that fails or drops (which librdkafka rides out on its own) is a WARNING, and each
kind of message (its facility, or the error's name) is logged once per interval: the first one
when it comes, then, at the end of the interval, one line counting the others with the last one.
A fatal error is an ERROR, and so is anything librdkafka logs at ERR outside its connection
facilities. Messages name brokers, never payloads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INTERVAL_S = 30.0
"""Length of one summary interval, per kind of message."""

# facilities of connection trouble librdkafka recovers from by itself (reconnect, retry)
TRANSIENT_FACILITIES = frozenset({"FAIL", "BROKERFAIL", "DISCONNECT", "REQTMOUT", "CONNECT"})
TRANSIENT_ERRORS = frozenset(
    {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_RESOLVE", "_TIMED_OUT", "REQUEST_TIMED_OUT"}
)


@dataclass
class _Kind:
    """What one kind of message did in the current interval."""

    since: float
    level: int
    more: int = 0
    last: str = ""


class KafkaLog:
    """Pass as librdkafka's ``logger`` (it calls ``log``) and ``error_cb`` (``error``)."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        interval: float = INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger or logging.getLogger("shadow.librdkafka")
        self.interval = interval
        self.clock = clock
        self._kinds: dict[str, _Kind] = {}
        self._lock = threading.Lock()

    def log(self, level: int, _format: str, facility: str, client: str, message: str) -> None:
        """librdkafka's log callback (confluent-kafka's ``logger`` protocol)."""
        if level >= logging.ERROR and facility in TRANSIENT_FACILITIES:
            level = logging.WARNING
        self._emit(facility, level, f"{client}: {message}")

    def error(self, error: Any) -> None:
        """librdkafka's error callback (``error_cb``): a KafkaError."""
        if error.fatal():
            level = logging.ERROR
        elif error.name() in TRANSIENT_ERRORS:
            level = logging.WARNING
        else:
            level = logging.WARNING if error.retriable() else logging.ERROR
        self._emit(error.name(), level, error.str())

    def tick(self) -> None:
        """Write the summaries of the intervals that ended (call it now and then)."""
        now = self.clock()
        with self._lock:
            ended = [k for k, s in self._kinds.items() if now - s.since >= self.interval]
            for kind in ended:
                self._summarise(kind, self._kinds.pop(kind))

    def _emit(self, kind: str, level: int, message: str) -> None:
        if not self.logger.isEnabledFor(level):
            return
        now = self.clock()
        with self._lock:
            state = self._kinds.get(kind)
            if state is not None and now - state.since < self.interval:
                state.more += 1
                state.last = message
                state.level = max(state.level, level)
                return
            if state is not None:
                self._summarise(kind, state)
            self._kinds[kind] = _Kind(now, level)
        self.logger.log(level, "librdkafka %s: %s", kind, message)

    def _summarise(self, kind: str, state: _Kind) -> None:
        if state.more:
            self.logger.log(
                state.level,
                "librdkafka %s: %d more like it in %.0fs, the last: %s",
                kind,
                state.more,
                self.interval,
                state.last,
            )


KAFKA_LOG = KafkaLog()
"""The process's librdkafka log: every client made from shadow.clients.base_config uses it."""
